"""Product lanes: one Dokploy application or compose service per lane of a Product."""
