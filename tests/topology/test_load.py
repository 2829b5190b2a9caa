"""Load: 200 readers, 20 feedback senders and 10 editors at once for 2 minutes.

Passes with zero 5xx, zero errors of any kind, and zero lost submissions: every reference a
thank-you page showed is in the database with every file sent, intact in storage, and its
acknowledgement reached the SMTP sink exactly once. The figures are printed (run with ``-s``)
for the README. ``TOPOLOGY_LOAD_SECONDS`` shortens the run for a quick local try; CI runs the
full two minutes.
"""

from __future__ import annotations

import os

import pytest

from bench import load
from tests.topology.checks import lost_submissions, stored_files
from tests.topology.client import wait_for_acknowledgements
from tests.topology.conftest import Running

pytestmark = pytest.mark.topology

SECONDS = float(os.environ.get("TOPOLOGY_LOAD_SECONDS", "120"))


def test_load_has_no_server_errors_and_loses_nothing(shared_topology: Running) -> None:
    topology = shared_topology.topology
    scenario = load.Scenario(
        base_url=topology.base_url,
        profile_paths=shared_topology.seeded.profile_paths,
        editors=shared_topology.seeded.editors,
        readers=200,
        senders=20,
        seconds=SECONDS,
        # Above the site's DESK_FORM_MIN_SECONDS (3), as a person's typing would be.
        form_seconds=3.5,
    )
    load_before = os.getloadavg()
    report = load.run(scenario)
    load_after = os.getloadavg()

    items = stored_files(shared_topology.database_url)
    lost = lost_submissions(report.submissions, items, topology.storage_root)
    copies = wait_for_acknowledgements(
        shared_topology.sink, {s.reference: s.email for s in report.submissions}, timeout=180
    )
    missing_acks = sorted(key for key, n in copies.items() if n == 0)
    repeated_acks = sorted(key for key, n in copies.items() if n > 1)

    print(f"\n=== load test: {os.cpu_count()} CPUs, load average before {load_before}")
    print(report.summary())
    print(
        f"lost submissions: {len(lost)}; acknowledgements missing: {len(missing_acks)}, "
        f"repeated: {len(repeated_acks)}; load average after {load_after}"
    )

    assert report.server_errors == 0, topology.server_errors()[:20]
    assert report.error_count == 0, report.errors
    assert report.submissions, "no submission was accepted"
    assert lost == []
    assert missing_acks == [] and repeated_acks == []
