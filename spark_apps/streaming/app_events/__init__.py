"""Short-video app engagement events: Kafka -> windowed category stats (MySQL) and clean Parquet (lake)."""
