"""Who is asking and which sites they may see: principals, roles and data-layer scopes."""
