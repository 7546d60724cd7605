"""One module per Kafka API served by pull mode; importing this package registers them all.

Each module opens with what the API does, how we answer it, and per-version notes (the way
franz-go's kfake does), and registers its handler with ``@api(<declaration>)``: the versions
come from the API's declaration in ``wire.kafka.messages``.

Every module in this package is imported here by discovery rather than from a list: the
package is the list. Serving a new API is then two edits (its declaration and its handler
module), with no third place to forget; ``tests/modes/pull/test_registry.py`` checks that
every declared API ended up with exactly one handler.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
