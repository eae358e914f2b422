"""Reading and writing the original options + hdf5 weight files."""
