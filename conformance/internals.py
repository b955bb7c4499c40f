"""The SDK stdio tests that exercise the SDK's private machinery rather than the transport contract.

Each entry: the test's node id -> (why it cannot run against rpcwire, the test of ours that checks the same
behaviour through rpcwire with real processes). Keep this list as short as honesty allows: a test that fails
because rpcwire behaves differently belongs in the fixes, not here.

Three private seams account for every entry:

- FAKE: the test replaces ``mcp.client.stdio._create_platform_compatible_process`` (the SDK's spawn hook)
  with a fake process object; rpcwire spawns through ``asyncio`` itself, so the fake is never called and a
  real exec of the fake's command name (``fake-server``) fails.
- RECORD: the test reads the ``spawned_processes`` / ``terminate_calls`` fixtures, which record the processes
  the SDK's private spawn and terminate helpers touched; rpcwire's processes never pass through them, so the
  recordings stay empty (``IndexError``).
- CLAIM: the test injects failures into ``mcp.server.stdio``'s private fd-claim helpers (``_dup_above_std``,
  ``os.dup2`` as that module calls it, ``_open_stdin_diversion``, ``_restore_fd``); rpcwire claims fds 0
  and 1 with its own code, which those injections do not reach.
"""

from __future__ import annotations

_TWINS = "tests/test_mcp_sdk_twins.py::"
_CLIENT = "tests/client/test_stdio.py::"
_SERVER = "tests/server/test_stdio.py::"
_LIFECYCLE = "tests/transports/stdio/test_lifecycle.py::"
_POSIX = "tests/transports/stdio/test_posix.py::"

FAKE = "FAKE: drives a fake process through the SDK's private spawn hook"
RECORD = "RECORD: asserts on the SDK's private process-recording fixtures"
CLAIM = "CLAIM: injects failures into mcp.server.stdio's private fd-claim helpers"

INTERNALS: dict[str, tuple[str, str]] = {
    _CLIENT + "test_messages_split_and_packed_across_chunks_are_reframed": (
        FAKE,
        _TWINS + "test_messages_split_and_packed_across_chunks_are_reframed",
    ),
    _CLIENT + "test_each_outgoing_message_is_written_as_exactly_one_line": (
        FAKE,
        _TWINS + "test_each_outgoing_message_is_written_as_exactly_one_line",
    ),
    _CLIENT + "test_invalid_json_from_the_server_surfaces_as_an_in_stream_exception": (
        FAKE,
        _TWINS + "test_invalid_json_from_the_server_surfaces_as_an_in_stream_exception",
    ),
    _CLIENT + "test_a_server_that_dies_before_responding_fails_initialize_with_connection_closed": (
        FAKE,
        _TWINS + "test_a_server_that_dies_before_responding_fails_initialize_with_connection_closed",
    ),
    _CLIENT + "test_a_server_that_exits_on_stdin_close_is_never_terminated": (
        FAKE,
        _TWINS + "test_a_server_that_exits_on_stdin_close_is_never_terminated",
    ),
    _CLIENT + "test_cancelling_the_client_still_runs_the_full_shutdown": (
        FAKE,
        _TWINS + "test_cancelling_the_client_still_runs_the_full_shutdown",
    ),
    _CLIENT + "test_writing_after_the_server_dies_reports_clean_closure": (
        FAKE,
        _TWINS + "test_writing_after_the_server_dies_reports_clean_closure",
    ),
    _CLIENT + "test_exiting_with_an_unconsumed_server_message_does_not_raise": (
        FAKE,
        _TWINS + "test_exiting_with_an_unconsumed_server_message_does_not_raise",
    ),
    _CLIENT + "test_spawn_failure_propagates_the_error_and_leaks_no_streams": (
        FAKE + " (a PermissionError it makes up)",
        _TWINS + "test_spawn_failure_propagates_the_error_and_leaks_no_streams",
    ),
    _CLIENT + "test_cancellation_during_windows_command_resolution_returns_before_resolution_finishes": (
        FAKE + " (and fakes the Windows-only command resolution on POSIX)",
        _TWINS + "test_cancelling_the_client_still_runs_the_full_shutdown",
    ),
    _CLIENT + "test_cancellation_during_spawn_leaks_no_streams": (
        FAKE,
        _TWINS + "test_cancelling_the_client_still_runs_the_full_shutdown",
    ),
    _CLIENT + "test_a_non_oserror_spawn_failure_propagates_and_leaks_no_streams": (
        FAKE,
        _TWINS + "test_a_non_oserror_spawn_failure_propagates_and_leaks_no_streams",
    ),
    _CLIENT + "test_a_message_sent_just_before_exit_is_flushed_to_the_server": (
        FAKE,
        _TWINS + "test_a_message_sent_just_before_exit_is_flushed_to_the_server",
    ),
    _CLIENT + "test_a_failed_write_to_a_live_server_closes_the_read_stream_instead_of_hanging": (
        FAKE,
        "tests/test_mcp_stdio_contract.py::test_a_send_to_a_server_that_stopped_reading_ends_the_read_stream_too",
    ),
    _CLIENT + "test_exit_completes_when_a_write_is_wedged_in_a_pipe_no_one_reads": (
        FAKE,
        "tests/test_mcp_stdio_contract.py::test_leaving_a_client_whose_server_does_not_read_is_clean_and_bounded",
    ),
    _CLIENT + "test_undelivered_server_output_is_drained_at_shutdown_so_the_server_can_exit": (
        FAKE,
        _TWINS + "test_undelivered_server_output_is_drained_at_shutdown_so_the_server_can_exit",
    ),
    _CLIENT + "test_shutdown_drains_stdout_first_so_a_wedged_writers_flush_can_complete": (
        FAKE,
        _TWINS + "test_undelivered_server_output_is_drained_at_shutdown_so_the_server_can_exit",
    ),
    _CLIENT + "test_cancellation_with_undelivered_backlog_still_drains_and_spares_the_server": (
        FAKE,
        _TWINS + "test_cancelling_the_client_still_runs_the_full_shutdown",
    ),
    _CLIENT + "test_invalid_utf8_flushed_by_a_dying_server_does_not_break_shutdown": (
        FAKE,
        _TWINS + "test_undelivered_server_output_is_drained_at_shutdown_so_the_server_can_exit",
    ),
    _CLIENT + "test_a_kill_racing_a_pending_stdout_read_is_swallowed_during_shutdown": (
        FAKE,
        _TWINS + "test_a_server_that_dies_before_responding_fails_initialize_with_connection_closed",
    ),
    _CLIENT + "test_a_mid_session_stdout_failure_is_logged_and_surfaces_as_clean_closure": (
        FAKE,
        _TWINS + "test_a_mid_session_stdout_failure_surfaces_as_clean_closure",
    ),
    _CLIENT + "test_a_failing_stdout_close_still_closes_the_transport_streams": (
        FAKE + " (whose stdout raises on close)",
        _TWINS + "test_a_mid_session_stdout_failure_surfaces_as_clean_closure",
    ),
    _CLIENT + "test_a_process_surviving_the_kill_escalation_is_logged_and_abandoned": (
        FAKE + " (that survives SIGKILL, which no real process does)",
        _TWINS + "test_kill_escalation_is_bounded",
    ),
    _CLIENT + "test_a_graceful_exit_with_a_surviving_child_leaks_no_pipe_fds": (
        RECORD,
        _TWINS + "test_a_graceful_exit_with_a_surviving_child",
    ),
    _SERVER + "test_stdio_server_reads_stdin_in_place_when_descriptor_isolation_fails[dup]": (
        CLAIM,
        _TWINS + "test_claim_failures_degrade_to_serving_in_place",
    ),
    _SERVER + "test_stdio_server_reads_stdin_in_place_when_descriptor_isolation_fails[dup2_destroys_target]": (
        CLAIM,
        _TWINS + "test_claim_failures_degrade_to_serving_in_place",
    ),
    _SERVER + "test_stdio_server_exits_cleanly_when_the_stdin_restore_fails": (
        CLAIM,
        _TWINS + "test_claim_failures_degrade_to_serving_in_place",
    ),
    _SERVER + "test_stdio_server_serves_in_place_when_the_diversion_cannot_be_opened": (
        CLAIM,
        _TWINS + "test_claim_failures_degrade_to_serving_in_place",
    ),
    _LIFECYCLE + "test_a_server_that_exits_on_stdin_close_is_reaped_and_never_terminated": (
        RECORD,
        _TWINS + "test_a_server_that_exits_on_stdin_close_is_never_terminated",
    ),
    _LIFECYCLE + "test_a_server_that_exits_mid_session_keeps_its_own_exit_code": (
        RECORD,
        _TWINS + "test_a_server_that_exits_mid_session_keeps_its_own_exit_code",
    ),
    _LIFECYCLE + "test_server_stderr_output_reaches_the_errlog_file": (
        RECORD,
        "tests/test_mcp.py::test_stdio_interop",
    ),
    _POSIX + "test_a_gracefully_exiting_servers_child_survives_the_client_shutdown": (
        RECORD,
        _TWINS + "test_a_graceful_exit_with_a_surviving_child",
    ),
}
