"""imdb_lm: recurrent networks trained from scratch vs fine-tuned transformers on IMDB sentiment."""

from imdb_lm import rundirs as _rundirs  # noqa: F401 - registers ${run_suffix:}, used in run folder names

__version__ = "0.1.0"

from imdb_lm.resolvers import register as _register_resolvers

_register_resolvers()
