"""imdb_lm: recurrent networks trained from scratch vs fine-tuned transformers on IMDB sentiment."""

__version__ = "0.1.0"

from imdb_lm.config.resolvers import register as _register_resolvers

_register_resolvers()
