"""Enhanced mode: sessions between pool users and pool elements, cookies, failover."""
