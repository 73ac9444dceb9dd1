"""Load profiles: ``--profile steady|spike|soak|step``, scaled from ``-u``, ``-r`` and ``-t``.

The locustfile imports the shape class, which also registers the options and listeners::

    from journeys.profiles import LoadProfile  # noqa: F401

Modules, each with one job:

* ``schedule``  the options and the phases each profile runs (pure logic)
* ``shape``     ``LoadProfile``, the one shape class: follows the schedule tick by tick
* ``phases``    per-phase HTTP request counters, mergeable from workers
* ``report``    the phase table, the profile's comparison, ``PREFIX_profile.csv``
* ``chart``     the corners of the user curve in Locust's chart history (the HTML report)
* ``verdict``   the SLO checks of the phases a profile is about (a spike's peak, a soak's end)
* ``hooks``     the Locust event listeners tying it together

See docs/profiles.md.
"""

from journeys.profiles import hooks  # noqa: F401  (options and listeners)
from journeys.profiles.shape import LoadProfile

__all__ = ["LoadProfile"]
