"""Storage: SQLModel tables, the database engine and the migrations that shape it."""
