"""``python -m include.producers`` runs the server-metrics producer (see include.producers.metrics)."""
import sys

from include.producers.metrics import DeliveryFailed, main

try:
    main()
except DeliveryFailed as error:
    print(error, file=sys.stderr)
    sys.exit(1)
