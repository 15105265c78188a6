"""The orders adapters: the SQLAlchemy repository and unit of work, and the RPC ports."""
