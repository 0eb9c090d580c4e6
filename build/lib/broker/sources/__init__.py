"""Source readers: one per input format, plus format detection. Each yields :class:`SourceItem`s."""
