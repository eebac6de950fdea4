"""``glia blob ...``: buckets and their objects.

Objects are named ``blob:BUCKET/KEY`` in the context's project (glia config switch-project;
your personal one by default) on the context's cluster, or ``blob://CLUSTER/ORG/PROJECT/
BUCKET/KEY`` anywhere. Anything else in ``cp`` is a local path (``-`` for stdin/stdout).

Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.options import (
    GliaCommand,
    OutputFormat,
    cluster_option,
    flag,
    output_option,
    with_examples,
)

if TYPE_CHECKING:
    from sdk import GliaClient
    from sdk.config import Context

blob_app = typer.Typer(
    help="Buckets of objects: create them, copy files in and out, hand out signed URLs and "
    "access keys.",
    invoke_without_command=True,
)


@blob_app.callback()
def _blob(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(blob_app, name="blob")


BLOB_PREFIX = "blob:"
# Files of a recursive copy moved at once (each large one in parallel parts of its own).
PARALLEL_FILES = 4
URI_HELP = "blob:BUCKET/KEY (in your project) or blob://CLUSTER/ORG/PROJECT/BUCKET/KEY."
BUCKET_HELP = "blob:BUCKET (in your project), BUCKET, or blob://CLUSTER/ORG/PROJECT/BUCKET."
CLUSTER_OPTION = cluster_option()
ORG_OPTION = typer.Option(
    None, "--org", metavar="ORG", help="The project's org.", show_default="the context's"
)
PROJECT_OPTION = typer.Option(
    None, "--project", metavar="PROJECT", help="The project.", show_default="the context's"
)


# -- names ----------------------------------------------------------------------------------


async def _cluster(client: GliaClient, context: Context) -> str:
    if context.cluster:
        return context.cluster
    clusters = await client.clusters.list()
    if not clusters:
        from sdk import NotFound

        raise NotFound("no cluster to keep buckets on")
    return clusters[0].name


async def absolute(client: GliaClient, context: Context, name: str) -> str:
    """``blob:data/x`` -> ``blob://CLUSTER/ORG/PROJECT/data/x``, in the context's project."""
    from cli.session import personal_name, working_project
    from sdk import BadInput

    if name.startswith("blob://"):
        return name
    relative = name.removeprefix(BLOB_PREFIX).lstrip("/")
    org, project = working_project(context)
    if project is None:
        # No project chosen: the personal one, in the personal org (a project of another org
        # is never guessed).
        personal = personal_name(context)
        if personal is None:
            raise BadInput(f"{name}: name the project, blob://CLUSTER/ORG/PROJECT/…")
        org, project = personal, personal
    elif org is None:
        org = personal_name(context)
        if org is None:
            raise BadInput(f"{name}: name the org, blob://CLUSTER/ORG/PROJECT/…")
    return f"blob://{await _cluster(client, context)}/{org}/{project}/{relative}"


def _is_blob(name: str) -> bool:
    return name.startswith(BLOB_PREFIX)


def _bucket_and_key(uri: str) -> tuple[str, str]:
    """``blob://c/o/p/b/k/x`` -> (``blob://c/o/p/b``, ``k/x``)."""
    parts = uri.removeprefix("blob://").split("/", 4)
    bucket = "blob://" + "/".join(parts[:4])
    return bucket, parts[4] if len(parts) == 5 else ""


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar with rate and ETA on stderr when it is a terminal; none when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda moved: bar.advance(task, moved)


def _run(work: Callable[[GliaClient, Context], Any], *, waiting: str | None = None) -> Any:
    from cli.session import current_config, open_client, run_async

    context = current_config()

    async def run() -> Any:
        async with open_client(context) as client:
            return await work(client, context)

    return run_async(run(), waiting=waiting)


# -- buckets --------------------------------------------------------------------------------


@blob_app.command("mkbucket", cls=GliaCommand)
def mkbucket(
    name: str = typer.Argument(..., metavar="NAME", help="3-63 lowercase letters, digits, '-'."),
    cluster: str | None = CLUSTER_OPTION,
    org: str | None = ORG_OPTION,
    project: str | None = PROJECT_OPTION,
    public: bool = flag("--public", help="Let anyone read its objects (project managers)."),
    output: OutputFormat = output_option(),
) -> None:
    """Create a bucket in a project."""
    from cli import formatting
    from cli.session import working_project

    async def make(client: GliaClient, context: Context) -> Any:
        in_org, in_project = working_project(context, org=org, project=project)
        return await client.blobs.create_bucket(
            name.removeprefix(BLOB_PREFIX),
            cluster=cluster or context.cluster,
            org=in_org,
            project=in_project,
            public=public,
        )

    bucket = _run(make, waiting="Creating the bucket")
    if output is not OutputFormat.TABLE:
        formatting.print_data(bucket, output)
    else:
        formatting.notice(f"Created {bucket.uri}")


with_examples("glia blob mkbucket data", "glia blob mkbucket shared --project vision --public")(
    mkbucket
)


def _bucket_uri(client: GliaClient, context: Context, name: str) -> Any:
    if not name.startswith(("blob:", "blob://")):
        name = BLOB_PREFIX + name
    return absolute(client, context, name.rstrip("/"))


@blob_app.command("rmbucket", cls=GliaCommand)
def rmbucket(
    bucket: str = typer.Argument(..., metavar="BUCKET", help=BUCKET_HELP),
    force: bool = flag("-f", "--force", help="Delete its objects too."),
    yes: bool = flag("-y", "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a bucket (an empty one, or with --force its objects too)."""
    from cli import formatting

    if force and not yes:
        typer.confirm(f"Delete bucket {bucket} and every object in it?", abort=True)

    async def delete(client: GliaClient, context: Context) -> Any:
        return await client.blobs.delete_bucket(
            await _bucket_uri(client, context, bucket), force=force
        )

    deleted = _run(delete, waiting="Deleting the bucket")
    formatting.notice(f"Deleted {deleted.uri}")


with_examples("glia blob rmbucket data", "glia blob rmbucket -f -y scratch")(rmbucket)


@blob_app.command("lsbucket", cls=GliaCommand)
def lsbucket(
    cluster: str | None = CLUSTER_OPTION,
    org: str | None = typer.Option(None, "--org", metavar="ORG", help="Only this org's."),
    project: str | None = typer.Option(
        None, "--project", metavar="PROJECT", help="Only this project's."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List the buckets you may read."""
    from cli import formatting

    async def buckets(client: GliaClient, _context: Context) -> Any:
        return await client.blobs.buckets(cluster=cluster, org=org, project=project)

    found = _run(buckets, waiting="Listing buckets")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
        return
    formatting.print_table(
        ["URI", "PROVIDER", "PUBLIC", "CREATED"],
        [
            (b.uri, b.provider.value, "yes" if b.public else "", formatting.age(b.created_at))
            for b in found
        ],
    )


with_examples("glia blob lsbucket", "glia blob lsbucket --org acme -o json")(lsbucket)


@blob_app.command("statbucket", cls=GliaCommand)
def statbucket(
    bucket: str = typer.Argument(..., metavar="BUCKET", help=BUCKET_HELP),
    output: OutputFormat = output_option(),
) -> None:
    """Show a bucket."""
    from cli import formatting

    async def get(client: GliaClient, context: Context) -> Any:
        return await client.blobs.bucket(await _bucket_uri(client, context, bucket))

    found = _run(get, waiting="Getting the bucket")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
        return
    formatting.print_fields(
        [
            ("URI", found.uri),
            ("Provider", found.provider.value),
            ("Public", "yes" if found.public else "no"),
            ("Imported", "yes" if found.imported else "no"),
            ("Created", found.created_at.isoformat()),
            ("URL", found.url),
        ]
    )


with_examples("glia blob statbucket data")(statbucket)


# -- objects --------------------------------------------------------------------------------


@blob_app.command("ls", cls=GliaCommand)
def ls(
    where: str = typer.Argument(..., metavar="BLOB_URI", help=BUCKET_HELP + " A key prefix."),
    recursive: bool = flag("-r", "--recursive", help="Every key beneath, not grouped by '/'."),
    long: bool = flag("-l", "--long", help="Sizes and times too."),
    output: OutputFormat = output_option(),
) -> None:
    """List objects (and, without -r, the prefixes that group them)."""
    from cli import formatting
    from glia.sizes import format_size

    async def listing(client: GliaClient, context: Context) -> tuple[list[Any], list[str]]:
        uri = await absolute(client, context, where if _is_blob(where) else BLOB_PREFIX + where)
        bucket, prefix = _bucket_and_key(uri)
        objects: list[Any] = []
        prefixes: list[str] = []
        async for page in client.blobs.iter_pages(
            bucket, prefix=prefix, delimiter=None if recursive else "/"
        ):
            objects += page.objects
            prefixes += page.prefixes
        return objects, prefixes

    objects, prefixes = _run(listing, waiting="Listing objects")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"objects": objects, "prefixes": prefixes}, output)
        return
    for prefix in prefixes:
        typer.echo(formatting.terminal_safe(prefix))
    for item in objects:
        key = formatting.terminal_safe(item.key)
        if long:
            typer.echo(f"{format_size(item.size):>10}  {item.modified_at:%Y-%m-%d %H:%M:%S}  {key}")
        else:
            typer.echo(key)


with_examples(
    "glia blob ls blob:data", "glia blob ls -r -l blob:data/logs/", "glia blob ls -o json data"
)(ls)


@blob_app.command("glob", cls=GliaCommand)
def glob(
    pattern: str = typer.Argument(
        ..., metavar="PATTERN", help="blob:BUCKET/PATTERN: *, ? and [...] in a part, ** across."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List the objects whose keys match a pattern."""
    from cli import formatting

    async def matches(client: GliaClient, context: Context) -> list[Any]:
        uri = await absolute(client, context, pattern)
        bucket, key_pattern = _bucket_and_key(uri)
        return await client.blobs.glob(bucket, key_pattern or "**")

    found = _run(matches, waiting="Matching")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
        return
    for item in found:
        typer.echo(formatting.terminal_safe(item.key))


with_examples("glia blob glob 'blob:data/**/*.csv'")(glob)


@blob_app.command("rm", cls=GliaCommand)
def rm(
    targets: list[str] = typer.Argument(..., metavar="BLOB_URI...", help=URI_HELP),
    recursive: bool = flag("-r", "--recursive", help="Every object whose key starts so."),
) -> None:
    """Delete objects."""
    from cli import formatting

    async def delete(client: GliaClient, context: Context) -> int:
        count = 0
        for target in targets:
            uri = await absolute(client, context, target)
            if not recursive:
                if not await client.blobs.delete(uri):
                    from sdk import NotFound

                    raise NotFound(f"{target}: no such object")
                count += 1
                continue
            bucket, prefix = _bucket_and_key(uri)
            async for page in client.blobs.iter_pages(bucket, prefix=prefix):
                for item in page.objects:
                    await client.blobs.delete(f"{bucket}/{item.key}")
                    count += 1
        return count

    count = _run(delete, waiting="Deleting")
    formatting.notice(f"Deleted {count} object{'s' if count != 1 else ''}")


with_examples("glia blob rm blob:data/old.csv", "glia blob rm -r blob:data/tmp/")(rm)


@blob_app.command("cp", cls=GliaCommand)
def cp(
    source: str = typer.Argument(..., metavar="SOURCE", help="A local path, - or " + URI_HELP),
    destination: str = typer.Argument(
        ..., metavar="DESTINATION", help="A local path, - or " + URI_HELP
    ),
    recursive: bool = flag("-r", "--recursive", help="Copy a directory or a key prefix."),
) -> None:
    """Copy files into a bucket, objects out of one, or objects between buckets. A
    destination ending with '/' (or an existing directory) keeps the source's name; -r
    copies 4 files at a time, a file over 64 MiB in parallel parts. A progress bar with rate
    and ETA shows on a terminal."""
    from cli import formatting

    async def copy(client: GliaClient, context: Context) -> int:
        if _is_blob(source) and _is_blob(destination):
            return await _between(client, context)
        if _is_blob(destination):
            return await _upload(client, context)
        if _is_blob(source):
            return await _download(client, context)
        from sdk import BadInput

        raise BadInput("one of SOURCE and DESTINATION must be blob:…")

    # What is on the local side, looked at before the copying starts.
    local_files: list[tuple[Path, str, int]] = []
    local_is_dir = False
    if _is_blob(destination) and not _is_blob(source) and source != "-":
        path = Path(source)
        local_is_dir = path.is_dir()
        if local_is_dir:
            if not recursive:
                from sdk import BadInput

                raise BadInput(f"{source} is a directory: give -r to copy it")
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                local_files.append((file, file.relative_to(path).as_posix(), file.stat().st_size))
        else:
            local_files.append((path, path.name, path.stat().st_size))
    elif _is_blob(source) and not _is_blob(destination) and destination != "-":
        local_is_dir = Path(destination).is_dir() or destination.endswith("/")

    async def _upload(client: GliaClient, context: Context) -> int:
        target = await absolute(client, context, destination)
        if source == "-":
            await client.blobs.upload(target, _stdin())
            return 1
        if local_is_dir:
            base = target.rstrip("/") + "/"
            total = sum(size for _, _, size in local_files)
            with progress_bar(f"{Path(source).name}/", total) as moved:
                await _each(
                    local_files,
                    lambda item: client.blobs.upload(base + item[1], item[0], progress=moved),
                )
            return len(local_files)
        file, name, size = local_files[0]
        if target.endswith("/"):
            target += name
        with progress_bar(name, size) as moved:
            await client.blobs.upload(target, file, progress=moved)
        return 1

    async def _download(client: GliaClient, context: Context) -> int:
        uri = await absolute(client, context, source)
        if destination == "-":
            async for chunk in client.blobs.download(uri):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return 1
        path = Path(destination)
        if recursive:
            bucket, prefix = _bucket_and_key(uri)
            objects: list[Any] = []
            async for page in client.blobs.iter_pages(bucket, prefix=prefix):
                objects += page.objects
            base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
            with progress_bar(prefix or bucket, sum(o.size for o in objects)) as moved:

                async def fetch(item: Any) -> None:
                    local = path.joinpath(*item.key.removeprefix(base).split("/"))
                    await asyncio.to_thread(local.parent.mkdir, parents=True, exist_ok=True)
                    await client.blobs.download_to(f"{bucket}/{item.key}", local, progress=moved)

                await _each(objects, fetch)
            return len(objects)
        if local_is_dir:
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
            path = path / uri.rsplit("/", 1)[-1]
        found = await client.blobs.stat(uri)
        with progress_bar(path.name, found.size) as moved:
            await client.blobs.download_to(uri, path, progress=moved)
        return 1

    async def _between(client: GliaClient, context: Context) -> int:
        uri = await absolute(client, context, source)
        target = await absolute(client, context, destination)
        if target.endswith("/"):
            target += uri.rsplit("/", 1)[-1]
        found = await client.blobs.stat(uri)
        with progress_bar(uri.rsplit("/", 1)[-1], found.size) as moved:
            await client.blobs.upload(target, client.blobs.download(uri), progress=moved)
        return 1

    count = _run(copy)
    if sys.stderr.isatty():
        formatting.notice(f"Copied {count} file{'s' if count != 1 else ''}")


async def _each(items: list[Any], work: Callable[[Any], Awaitable[Any]]) -> None:
    """``work`` on every item, `PARALLEL_FILES` at a time; the first failure stops the rest."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # shared: each item is taken by one worker
            await work(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(PARALLEL_FILES, len(items))):
            group.create_task(worker())


async def _stdin() -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(sys.stdin.buffer.read, 1024 * 1024):
        yield chunk


with_examples(
    "glia blob cp model.pt blob:data/models/",
    "glia blob cp -r ./dataset blob:data/dataset",
    "glia blob cp blob:data/models/model.pt .",
    "glia blob cp blob:data/log.txt - | less",
)(cp)


@blob_app.command("sign-url", cls=GliaCommand)
def sign_url(
    target: str = typer.Argument(..., metavar="BLOB_URI", help=URI_HELP),
    expires: str = typer.Option(
        "1h", "--expires", metavar="DURATION", help="How long it works: 30m, 1h, 7d at most."
    ),
    put: bool = flag("--put", help="A URL that writes the object (PUT) instead of reading it."),
    output: OutputFormat = output_option(),
) -> None:
    """Print a URL that reads (or writes) one object without a token until it expires."""
    from cli import formatting
    from sdk import BadInput, parse_duration

    try:
        seconds = int(parse_duration(expires).total_seconds())
    except ValueError as exc:
        raise BadInput(str(exc)) from None

    async def sign(client: GliaClient, context: Context) -> Any:
        uri = await absolute(client, context, target)
        return await client.blobs.sign_url(
            uri, method="PUT" if put else "GET", expires_in_s=seconds
        )

    signed = _run(sign, waiting="Signing")
    if output is not OutputFormat.TABLE:
        formatting.print_data(signed, output)
    else:
        typer.echo(signed.url)


with_examples(
    "glia blob sign-url blob:data/report.pdf --expires 30m",
    'curl -T model.pt "$(glia blob sign-url --put blob:data/model.pt)"',
)(sign_url)


# -- access keys ----------------------------------------------------------------------------


@blob_app.command("mkcredentials", cls=GliaCommand)
def mkcredentials(
    name: str = typer.Argument(..., metavar="NAME", help="What the key is for."),
    buckets: list[str] = typer.Argument(..., metavar="BUCKET...", help=BUCKET_HELP),
    read_only: bool = flag("--read-only", help="The key may only read."),
    output: OutputFormat = output_option(),
) -> None:
    """Make an access key for programs outside Glia (HTTP Basic ACCESS_KEY:SECRET on the
    buckets' byte routes). The secret is shown only this once."""
    from cli import formatting

    async def make(client: GliaClient, context: Context) -> Any:
        uris = [await _bucket_uri(client, context, bucket) for bucket in buckets]
        return await client.blobs.create_credentials(name, uris, read_only=read_only)

    credential, secret = _run(make, waiting="Making the access key")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"credential": credential, "secret": secret}, output)
        return
    formatting.print_fields(
        [
            ("Id", credential.id),
            ("Access key", credential.access_key_id),
            ("Secret", secret),
            ("Buckets", ", ".join(credential.buckets)),
            ("Read-only", "yes" if credential.read_only else "no"),
        ]
    )
    formatting.notice("The secret is shown only once: store it now.")


with_examples(
    "glia blob mkcredentials ci data", "glia blob mkcredentials --read-only dashboard data logs"
)(mkcredentials)


@blob_app.command("lscredentials", cls=GliaCommand)
def lscredentials(output: OutputFormat = output_option()) -> None:
    """List your access keys (never their secrets)."""
    from cli import formatting

    async def listing(client: GliaClient, _context: Context) -> Any:
        return await client.blobs.credentials()

    found = _run(listing, waiting="Listing access keys")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
        return
    formatting.print_table(
        ["ID", "NAME", "ACCESS KEY", "READ-ONLY", "BUCKETS"],
        [
            (c.id, c.name, c.access_key_id, "yes" if c.read_only else "", ", ".join(c.buckets))
            for c in found
        ],
    )


with_examples("glia blob lscredentials")(lscredentials)


@blob_app.command("rmcredentials", cls=GliaCommand)
def rmcredentials(
    credential_id: str = typer.Argument(..., metavar="ID", help="The key's id (lscredentials)."),
) -> None:
    """Delete one of your access keys: it stops working at once."""
    from cli import formatting

    async def delete(client: GliaClient, _context: Context) -> Any:
        return await client.blobs.delete_credentials(credential_id)

    deleted = _run(delete, waiting="Deleting the access key")
    formatting.notice(f"Deleted access key {deleted.access_key_id}")


with_examples("glia blob rmcredentials 3f2c…")(rmcredentials)
