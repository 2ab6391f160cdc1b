"""A Remote Workers API bot for ocib's tests: the worker behind BuildGrid's Execution service.

No REAPI worker is on the package registries this project may use (BuildGrid's own buildbox
is C++ and not packaged), so the tests keep this one. It speaks the Remote Workers API
(google.devtools.remoteworkers.v1test2) with the protos shipped inside the `buildgrid`
package, and runs under BuildGrid's venv python:

    CreateBotSession once, then UpdateBotSession in a loop (BuildGrid long-polls it). A lease's
    payload is the REAPI `Action`: the bot fetches its `Command` and input root from the CAS,
    lays the input root out in a fresh directory (files hard-linked from a local blob cache, so
    a big tool such as the ocib binary is downloaded once), runs the command there with exactly
    the Command's environment, uploads the outputs (files, directories as `Tree` messages,
    stdout and stderr) and completes the lease with the `ActionResult` packed as its result.

Usage: python bot.py --remote 127.0.0.1:PORT --workdir DIR [--name NAME] [--property K=V]...
                     [--inherit-env NAME]...

`--inherit-env NAME` gives commands that do not set NAME the bot's own value, as a worker image
provides tools (ocib's Go actions find `go` through OCIB_GO or PATH, as bb_runner's configured
environment or a container image would give it).
"""

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid

import grpc

from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid._protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2

BATCH_LIMIT = 2 * 1024 * 1024
CHUNK = 1024 * 1024


class Cas:
    """The server's CAS, with a local cache of the blobs this bot has seen."""

    def __init__(self, channel, instance, cache_dir):
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.bs = bytestream_pb2_grpc.ByteStreamStub(channel)
        self.instance = instance
        self.cache_dir = cache_dir
        os.makedirs(cache_dir, exist_ok=True)

    def _prefix(self):
        return f"{self.instance}/" if self.instance else ""

    def read(self, digest):
        """The bytes of a blob (verified)."""
        if digest.size_bytes == 0:
            return b""
        if digest.size_bytes < BATCH_LIMIT:
            resp = self.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(instance_name=self.instance, digests=[digest]))
            r = resp.responses[0]
            if r.status.code != 0:
                raise RuntimeError(f"blob {digest.hash}: {r.status.message}")
            data = r.data
        else:
            name = f"{self._prefix()}blobs/{digest.hash}/{digest.size_bytes}"
            data = b"".join(c.data for c in self.bs.Read(bytestream_pb2.ReadRequest(resource_name=name)))
        if hashlib.sha256(data).hexdigest() != digest.hash:
            raise RuntimeError(f"blob {digest.hash} arrived corrupt")
        return data

    def file(self, digest, executable):
        """A read-only local copy of a blob, to hard-link into input roots."""
        path = os.path.join(self.cache_dir, digest.hash + (".x" if executable else ""))
        if os.path.exists(path):
            return path
        tmp = f"{path}.{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            if digest.size_bytes >= BATCH_LIMIT:
                name = f"{self._prefix()}blobs/{digest.hash}/{digest.size_bytes}"
                h = hashlib.sha256()
                for chunk in self.bs.Read(bytestream_pb2.ReadRequest(resource_name=name)):
                    h.update(chunk.data)
                    f.write(chunk.data)
                if h.hexdigest() != digest.hash:
                    raise RuntimeError(f"blob {digest.hash} arrived corrupt")
            else:
                f.write(self.read(digest))
        os.chmod(tmp, 0o555 if executable else 0o444)
        os.rename(tmp, path)
        return path

    def upload(self, blobs):
        """Sends the blobs (digest -> bytes or path) the server lacks."""
        if not blobs:
            return
        missing = self.cas.FindMissingBlobs(
            re_pb2.FindMissingBlobsRequest(instance_name=self.instance, blob_digests=[d for d, _ in blobs.values()])
        ).missing_blob_digests
        batch, size = [], 0
        for d in missing:
            _, source = blobs[d.hash]
            data = source if isinstance(source, bytes) else open(source, "rb").read()
            if d.size_bytes >= BATCH_LIMIT:
                self._write(d, data)
                continue
            if size + d.size_bytes >= BATCH_LIMIT:
                self._batch(batch)
                batch, size = [], 0
            batch.append(re_pb2.BatchUpdateBlobsRequest.Request(digest=d, data=data))
            size += d.size_bytes
        self._batch(batch)

    def _batch(self, batch):
        if batch:
            resp = self.cas.BatchUpdateBlobs(re_pb2.BatchUpdateBlobsRequest(instance_name=self.instance, requests=batch))
            for r in resp.responses:
                if r.status.code != 0:
                    raise RuntimeError(f"upload of {r.digest.hash}: {r.status.message}")

    def _write(self, digest, data):
        name = f"{self._prefix()}uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size_bytes}"

        def chunks():
            for off in range(0, len(data), CHUNK):
                yield bytestream_pb2.WriteRequest(
                    resource_name=name if off == 0 else "",
                    write_offset=off,
                    finish_write=off + CHUNK >= len(data),
                    data=data[off : off + CHUNK],
                )

        self.bs.Write(chunks())


def digest_of(data):
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def lay_out(cas, directory, path, depth=0):
    """Writes the input tree `directory` (a Directory message) at `path`."""
    if depth > 256:
        raise RuntimeError("input tree too deep")
    os.makedirs(path, exist_ok=True)
    for f in directory.files:
        check_name(f.name)
        os.link(cas.file(f.digest, f.is_executable), os.path.join(path, f.name))
    for d in directory.directories:
        check_name(d.name)
        child = re_pb2.Directory()
        child.ParseFromString(cas.read(d.digest))
        lay_out(cas, child, os.path.join(path, d.name), depth + 1)


def check_name(name):
    if not name or name in (".", "..") or "/" in name:
        raise RuntimeError(f"bad name in input tree: {name!r}")


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return re_pb2.Digest(hash=h.hexdigest(), size_bytes=os.path.getsize(path))


def directory_message(path, blobs, children):
    """The Directory message of `path` (its files' blobs and subdirectory messages added)."""
    d = re_pb2.Directory()
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        st = os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            child = directory_message(full, blobs, children)
            data = child.SerializeToString()
            digest = digest_of(data)
            children.append(child)
            d.directories.add(name=name, digest=digest)
        elif stat.S_ISREG(st.st_mode):
            digest = file_digest(full)
            blobs[digest.hash] = (digest, full)
            d.files.add(name=name, digest=digest, is_executable=bool(st.st_mode & 0o111))
        else:
            raise RuntimeError(f"output {full} is neither a file nor a directory")
    return d


def execute(cas, action, workdir, inherit):
    """Runs an Action; its ActionResult."""
    command = re_pb2.Command()
    command.ParseFromString(cas.read(action.command_digest))
    root = os.path.join(workdir, "exec", uuid.uuid4().hex)
    try:
        root_dir = re_pb2.Directory()
        root_dir.ParseFromString(cas.read(action.input_root_digest))
        lay_out(cas, root_dir, root)
        cwd = os.path.join(root, command.working_directory)
        outputs = list(command.output_paths) or list(command.output_files) + list(command.output_directories)
        for out in outputs:
            os.makedirs(os.path.dirname(os.path.join(cwd, out)), exist_ok=True)
        for out in command.output_directories:
            os.makedirs(os.path.join(cwd, out), exist_ok=True)
        env = {e.name: e.value for e in command.environment_variables}
        for name in inherit:
            if name not in env and name in os.environ:
                env[name] = os.environ[name]
        timeout = action.timeout.seconds or 900
        try:
            proc = subprocess.run(list(command.arguments), cwd=cwd, env=env, capture_output=True, timeout=timeout)
            exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            exit_code, stdout, stderr = 124, e.stdout or b"", (e.stderr or b"") + b"\n(timed out)"
        except OSError as e:
            exit_code, stdout, stderr = 127, b"", f"cannot run {command.arguments[0]}: {e}".encode()
        result = re_pb2.ActionResult(exit_code=exit_code)
        blobs = {}
        for data, field in ((stdout, "stdout_digest"), (stderr, "stderr_digest")):
            d = digest_of(data)
            blobs[d.hash] = (d, data)
            getattr(result, field).CopyFrom(d)
        if exit_code == 0:
            for out in sorted(set(outputs)):
                full = os.path.join(cwd, out)
                if os.path.isdir(full) and not os.path.islink(full):
                    children = []
                    tree = re_pb2.Tree(root=directory_message(full, blobs, children), children=children)
                    data = tree.SerializeToString()
                    d = digest_of(data)
                    blobs[d.hash] = (d, data)
                    result.output_directories.add(path=out, tree_digest=d)
                elif os.path.isfile(full):
                    d = file_digest(full)
                    blobs[d.hash] = (d, full)
                    result.output_files.add(path=out, digest=d, is_executable=bool(os.stat(full).st_mode & 0o111))
        cas.upload(blobs)
        return result
    finally:
        for dirpath, dirnames, _ in os.walk(root):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o755)
        shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--remote", required=True, help="HOST:PORT of BuildGrid")
    p.add_argument("--instance", default="")
    p.add_argument("--workdir", required=True)
    p.add_argument("--name", default=f"ocib-test-bot-{os.getpid()}")
    p.add_argument("--property", action="append", default=[], help="K=V device property")
    p.add_argument("--inherit-env", action="append", default=[], help="variable commands get from the bot")
    args = p.parse_args()

    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    channel = grpc.insecure_channel(args.remote, options=options)
    cas = Cas(channel, args.instance, os.path.join(args.workdir, "blobs"))
    bots = bots_pb2_grpc.BotsStub(channel)
    device = worker_pb2.Device(handle=args.name)
    for kv in args.property:
        k, v = kv.split("=", 1)
        device.properties.add(key=k, value=v)
    session = bots_pb2.BotSession(bot_id=args.name, status=bots_pb2.BotStatus.OK, worker=worker_pb2.Worker(devices=[device]))
    while True:
        try:
            session = bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(parent=args.instance, bot_session=session), timeout=30)
            break
        except grpc.RpcError as e:
            print(f"CreateBotSession: {e}", file=sys.stderr, flush=True)
            time.sleep(0.5)
    print(f"bot {args.name}: session {session.name}", file=sys.stderr, flush=True)
    while True:
        for lease in session.leases:
            if lease.state == bots_pb2.LeaseState.PENDING:
                lease.state = bots_pb2.LeaseState.ACTIVE
            if lease.state != bots_pb2.LeaseState.ACTIVE:
                continue
            action = re_pb2.Action()
            lease.payload.Unpack(action)
            try:
                result = execute(cas, action, args.workdir, args.inherit_env)
                lease.result.Pack(result)
                lease.status.code = 0
            except Exception as e:  # reported to the client as the lease's status
                print(f"lease {lease.id}: {e}", file=sys.stderr, flush=True)
                lease.status.code = 13  # INTERNAL
                lease.status.message = str(e)
            lease.state = bots_pb2.LeaseState.COMPLETED
        try:
            session = bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=20)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                print(f"UpdateBotSession: {e.code()}: {e.details()}", file=sys.stderr, flush=True)
                time.sleep(0.5)
            # A lost reply: the server re-sends what is still ours on the next update.


if __name__ == "__main__":
    main()
