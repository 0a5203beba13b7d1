"""Background work: periodic jobs, all listed in ``registry``."""
