"""dig-lj: a Lennard-Jones argon cluster forces dataset for dig's 3D track (an example dataset plugin)."""
