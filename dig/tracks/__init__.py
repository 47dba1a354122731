"""Tracks: one folder per benchmark track, each with its own protocol. A track never imports another track."""
