"""The service database: one metadata for every table (`tables`), the engine (`engine`), the
Alembic migrations (`migrate`, `migrations/`), and the stores built on them: feedback
(`feedback`), score history (`score_history`, `bulk`) and the identity vault (`identity`)."""
