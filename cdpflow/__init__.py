"""cdpflow: real-time customer profiles, tags, segments and triggers on Kafka and Bytewax.

The package holds the edges shared by every process: settings, the Avro codec, Kafka
administration and the command line. Pure profile logic lives in ``state``; the Bytewax
wiring in ``flows``.
"""

__all__: list[str] = []
