"""The energy x weather analysis (issue 16): profiles and charts of the joined readings, and a linear
regression of energy use on temperature and hour of day with Spark MLlib."""
