"""``make conformance``: Swift's own functional test suite against a fresh ``pocketstack up``.

The harness (``python -m tests.conformance.run``) never vendors Swift: it downloads the
``swift`` sdist into ``.conformance/`` (gitignored), builds a separate virtualenv there for the
suite's dependencies (eventlet, swiftclient, keystoneclient...), starts a cloud in a temp dir,
creates the projects/users/roles the suite expects through the identity API, writes Swift's
``test.conf``, runs ``test/functional`` with pytest (one process per module, a few at once) and
summarises the outcome.

Modules, one concern each:

- ``swiftsrc``  the sdist (download, cache, extract) and the conformance virtualenv;
- ``cloud``     the ``pocketstack up`` process: free ports, readiness, logs, stop;
- ``accounts``  the test users (per slot), identity provisioning, ``test.conf``;
- ``slots``     test modules, the queue that parallel slots drain, the pytest processes;
- ``results``   JUnit XML → outcomes, grouped failures, ``results.json`` / ``summary.md``;
- ``run``       the command line that strings them together.

See docs/conformance.md.
"""
