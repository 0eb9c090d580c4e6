"""The web front of broker (``broker serve``): one-click VCSE feedback links and the officer workspace.

``tokens`` and ``config`` are plain Python (the digest builder signs its links with them); ``app`` builds
the Starlette application. Nothing here imports click.
"""
