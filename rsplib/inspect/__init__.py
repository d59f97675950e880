"""Tools that look into a running pool: the handlespace dump behind ``rsp-hsdump``."""
