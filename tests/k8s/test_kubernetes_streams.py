"""Exec and port-forward into a job's pod through the API server's real streaming
subresources (WebSocket to kube-apiserver, on to kwok's kubelet server).

kwok has no container: its kubelet server runs an exec's command on this host, and connects a
forwarded port to `cat` (deploy/k8s-testenv/kwok/debugging.yaml). What is real is everything
between the runtime and the kubelet: the API server's authentication and authorization of
the subresource, the channel protocols, stdin, output streams, the exit status and errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cluster_gateway.exec import ExecStream
from cluster_gateway.gateway import WorkloadPhase
from cluster_gateway.runtimes.kubernetes import pod_name
from cluster_gateway.runtimes.kubernetes_streams import exit_code_of
from glia.errors import Conflict, NotFound
from tests.contract.harness import FOREVER
from tests.contract.test_runtime_contract import ended, events_until, running
from tests.k8s.test_runtime_contract_k8s import KubernetesHarness
from tests.k8s.testenv import Cluster

pytestmark = pytest.mark.k8s


@pytest.fixture
async def harness(k8s_cluster: Cluster) -> AsyncIterator[KubernetesHarness]:
    harness = KubernetesHarness(k8s_cluster)
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.teardown()


async def collect(session: object) -> tuple[bytes, bytes, int]:
    out, err = bytearray(), bytearray()
    async for stream, chunk in session.output():  # type: ignore[attr-defined]
        (out if stream is ExecStream.STDOUT else err).extend(chunk)
    return bytes(out), bytes(err), await session.wait()  # type: ignore[attr-defined]


async def test_exec_streams_output_apart_and_says_the_exit_code(
    harness: KubernetesHarness,
) -> None:
    await running(harness, "job-1")
    session = await harness.runtime.exec(
        "job-1",
        ["sh", "-c", "echo out; echo err >&2; head -c 100000 /dev/zero | tr '\\0' x; exit 3"],
    )
    try:
        out, err, code = await asyncio.wait_for(collect(session), 30)
    finally:
        await session.close()
    assert out == b"out\n" + b"x" * 100_000
    assert err == b"err\n"
    assert code == 3

    ok = await harness.runtime.exec("job-1", ["true"])
    assert (await asyncio.wait_for(collect(ok), 30))[2] == 0


async def test_exec_feeds_stdin(harness: KubernetesHarness) -> None:
    await running(harness, "job-1")
    session = await harness.runtime.exec("job-1", ["head", "-n", "2"])
    try:
        await session.write(b"first line\n")
        await session.write(b"second line\nthird, never read\n")
        await session.close_stdin()
        out, _err, code = await asyncio.wait_for(collect(session), 30)
    finally:
        await session.close()
    assert (out, code) == (b"first line\nsecond line\n", 0)


async def test_a_command_that_cannot_run_says_why(harness: KubernetesHarness) -> None:
    await running(harness, "job-1")
    session = await harness.runtime.exec("job-1", ["/nonexistent/command"])
    _out, err, code = await asyncio.wait_for(collect(session), 30)
    assert code != 0
    assert b"nonexistent" in err


async def test_exec_and_ports_need_a_running_job(harness: KubernetesHarness) -> None:
    with pytest.raises(NotFound):
        await harness.runtime.exec("no-such-job", ["true"])
    with pytest.raises(NotFound):
        await harness.runtime.connect("no-such-job", 8080)
    await running(harness, "job-1")
    await harness.runtime.stop("job-1", grace_s=0)
    await ended(harness.runtime, "job-1")
    with pytest.raises(Conflict):
        await harness.runtime.exec("job-1", ["true"])
    with pytest.raises(Conflict):
        await harness.runtime.connect("job-1", 8080)


async def test_a_forwarded_port_carries_bytes_both_ways(harness: KubernetesHarness) -> None:
    await running(harness, "job-1")
    reader, writer = await harness.runtime.connect("job-1", 8080)
    try:
        payload = bytes(range(256)) * 1024  # 256 KiB, every byte value
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 30)
        assert echoed == payload
        # A second connection to the same pod at once is its own.
        other_reader, other_writer = await harness.runtime.connect("job-1", 9090)
        other_writer.write(b"other\n")
        assert await asyncio.wait_for(other_reader.readline(), 30) == b"other\n"
        other_writer.close()
    finally:
        writer.close()


def test_exit_codes_from_the_status_a_kubelet_sends() -> None:
    assert exit_code_of({"status": "Success"}) == 0
    assert (
        exit_code_of(
            {
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "42"}]},
            }
        )
        == 42
    )
    # As a runtime that wraps Go's error text says it.
    assert exit_code_of({"status": "Failure", "message": "cmd wait: sh: exit status 7"}) == 7
    assert exit_code_of({"status": "Failure", "message": "executable file not found"}) is None


async def test_a_terminal_jobs_input_and_size_go_through_pods_attach(
    harness: KubernetesHarness,
) -> None:
    """kwok drops what is written to a pod's terminal, so what is checked is the API server's
    side: the attach WebSocket is accepted, input and resizes are taken, a session the
    server closed is attached again, and jobs without a terminal or not running refuse."""
    runtime = harness.runtime
    spec = harness.spec("tty-job", FOREVER).model_copy(update={"tty": True})
    async with runtime.watch() as watch:
        await runtime.start(spec)
        await events_until(watch, "tty-job", WorkloadPhase.RUNNING)
    # Writes at once to a terminal not attached yet attach it once.
    streams = runtime._streams
    attach, attached = streams._attach, []

    async def counted(key: tuple[str, str]) -> Any:
        attached.append(key)
        return await attach(key)

    streams._attach = counted  # type: ignore[method-assign]
    await asyncio.gather(*(runtime.write_stdin("tty-job", b"ls\r") for _ in range(3)))
    assert len(attached) == 1
    streams._attach = attach  # type: ignore[method-assign]
    await runtime.resize_terminal("tty-job", 40, 120)
    await runtime.write_stdin("tty-job", b"x" * 200_000)  # many frames
    # The server ends the session (as it does an idle one): the next write attaches again.
    namespace, pod = harness.namespace, pod_name("tty-job")
    session = await runtime._streams.terminal(namespace, pod)
    await session.close()
    await runtime.write_stdin("tty-job", b"again\r")
    assert await runtime._streams.terminal(namespace, pod) is not session

    await running(harness, "plain")
    with pytest.raises(Conflict):
        await runtime.write_stdin("plain", b"no terminal")
    await runtime.stop("tty-job", grace_s=0)
    await ended(runtime, "tty-job")
    with pytest.raises(Conflict):
        await runtime.write_stdin("tty-job", b"ended")
