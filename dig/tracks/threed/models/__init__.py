"""3D molecular models of the track (one file each)."""
