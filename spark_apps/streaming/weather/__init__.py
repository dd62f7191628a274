"""Weather pipeline: OpenWeatherMap current-weather responses from Kafka into Cassandra and MySQL."""
