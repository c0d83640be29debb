"""A local HTTP server that speaks the OpenAI and Anthropic wire protocols (chat completions,
messages, files, fine-tuning jobs, OpenAI batches, Anthropic message batches), translates the
toy corpus word by word, counts requests per source, and injects faults on request.

Faults, per source and attempt: `429` (with Retry-After), `500`, `529`, `slow` (answers after the
client's timeout), `malformed` (a 200 with a broken JSON body), `drop` (closes the connection
without answering), `echo` (a 400 that quotes the key), `400` (a request the server rejects);
and final answers that need cleaning or flagging: `refusal`, `preamble`, `wrap:<template>` (the
translation `{t}` of the source `{s}` inside the template). `default_fault` applies to every
request that has no fault of its own; a model in `missing_models` gets a 404 as a wrong model name
does from the providers.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import http.server
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator

from toy import LEXICON

REFUSAL = "I'm sorry, but I can't help with that request."


def toy_translation(source: str) -> str:
    return " ".join(LEXICON.get(word, word) for word in source.split())


class FakeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the clients open many connections at once

    def __init__(self, latency: float = 0.0, slow_seconds: float = 2.0, retry_after: str = "1"):
        super().__init__(("127.0.0.1", 0), Handler)
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.faults: dict[str, list[str]] = {}
        self.default_fault: str | None = None
        self.missing_models: set[str] = set()
        self.requests: Counter[str] = Counter()  # attempts per source
        self.answered: Counter[str] = Counter()  # good answers per source
        self.models: Counter[str] = Counter()
        self.keys_seen: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.polls: Counter[str] = Counter()
        self.polls_to_finish = 2
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def take_fault(self, source: str) -> str | None:
        with self.lock:
            self.requests[source] += 1
            faults = self.faults.get(source) or []
            return faults.pop(0) if faults else self.default_fault

    def answer_text(self, source: str, fault: str | None) -> str:
        if fault == "refusal":
            return REFUSAL
        if fault == "preamble":
            return f'Here is the translation:\n\n"{toy_translation(source)}"'
        if fault and fault.startswith("wrap:"):
            return fault.removeprefix("wrap:").format(t=toy_translation(source), s=source)
        return toy_translation(source)

    def chat(self, body: dict, fault: str | None = None) -> dict:
        self.models[body["model"]] += 1
        source = body["messages"][-1]["content"]
        text = self.answer_text(source, fault)
        tokens = len(text.split())
        choice = {"index": 0, "finish_reason": "stop"}
        choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [{"token": w, "logprob": -0.5, "bytes": None, "top_logprobs": []}
                            for w in text.split()]
            }  # fmt: skip
        return {
            "id": self.next_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [choice],
            "usage": {
                "prompt_tokens": 10 + len(source.split()),
                "completion_tokens": tokens,
                "total_tokens": 10 + len(source.split()) + tokens,
            },
        }

    def message(self, body: dict, fault: str | None = None) -> dict:
        self.models[body["model"]] += 1
        source = body["messages"][-1]["content"]
        text = self.answer_text(source, fault)
        return {
            "id": self.next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "refusal" if fault == "refusal" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10 + len(source.split()), "output_tokens": len(text.split())},
        }


@contextlib.contextmanager
def fake_api(**kwargs) -> Iterator[FakeApi]:
    server = FakeApi(**kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def send_json(self, status: int, data: object, headers: dict | None = None) -> None:
        self.send_bytes(status, json.dumps(data).encode(), "application/json", headers)

    def send_bytes(self, status: int, body: bytes, kind: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client timed out
            self.wfile.write(body)

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def note_key(self) -> None:
        key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
        self.server.keys_seen.add(key.removeprefix("Bearer "))

    def do_POST(self) -> None:
        self.note_key()
        raw = self.read_body()
        path = self.path.split("?")[0]
        if path == "/v1/files":
            return self.upload(raw)
        body = json.loads(raw)
        routes = {
            "/v1/chat/completions": self.completion,
            "/v1/messages": self.completion,
            "/v1/fine_tuning/jobs": self.create_job,
            "/v1/batches": self.create_openai_batch,
            "/v1/messages/batches": self.create_anthropic_batch,
        }
        return routes[path](body)

    def do_GET(self) -> None:
        self.note_key()
        path = self.path.split("?")[0]
        server = self.server
        if m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            return self.send_bytes(200, server.files[m[1]], "application/octet-stream")
        if m := re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)", path):
            return self.send_json(200, self.poll_job(m[1]))
        if m := re.fullmatch(r"/v1/batches/([^/]+)", path):
            return self.send_json(200, self.poll_batch(m[1]))
        if m := re.fullmatch(r"/v1/messages/batches/([^/]+)", path):
            return self.send_json(200, self.poll_batch(m[1]))
        if m := re.fullmatch(r"/v1/messages/batches/([^/]+)/results", path):
            body = server.files[server.batches[m[1]]["output"]]
            return self.send_bytes(200, body, "application/x-jsonl")
        self.send_json(404, {"error": {"message": f"no route {path}"}})

    def completion(self, body: dict) -> None:
        server = self.server
        source = body["messages"][-1]["content"]
        fault = server.take_fault(source)
        time.sleep(server.latency)
        if fault == "429":
            error = {"error": {"message": "rate limited", "type": "rate_limit_error"}}
            return self.send_json(429, error, {"Retry-After": server.retry_after})
        if fault in ("500", "529"):
            error = {"type": "error", "error": {"type": "overloaded_error", "message": fault}}
            return self.send_json(int(fault), error)
        if fault == "malformed":
            return self.send_bytes(200, b'{"choices": [ {"mess', "application/json")
        if fault == "echo":  # a 400 whose message quotes the key, as some servers' do
            key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
            return self.send_json(400, {"error": {"message": f"bad request with key {key}"}})
        if fault == "400":
            message = "max_tokens is too large: 99999999. This model supports at most 4096."
            error = {"error": {"message": message, "type": "invalid_request_error"}}
            return self.send_json(400, error)
        if fault == "drop":
            self.close_connection = True
            return None
        if fault == "slow":
            time.sleep(server.slow_seconds)
        if body["model"] in server.missing_models:
            return self.missing_model(body["model"])
        anthropic = self.path.startswith("/v1/messages")
        reply = server.message(body, fault) if anthropic else server.chat(body, fault)
        self.send_json(200, reply)
        if fault != "slow":
            with server.lock:
                server.answered[source] += 1

    def missing_model(self, model: str) -> None:
        if self.path.startswith("/v1/messages"):
            error = {
                "type": "error",
                "error": {"type": "not_found_error", "message": f"model: {model}"},
            }
        else:
            message = f"The model `{model}` does not exist or you do not have access to it."
            error = {"error": {"message": message, "type": "invalid_request_error",
                               "code": "model_not_found"}}  # fmt: skip
        self.send_json(404, error)

    def upload(self, raw: bytes) -> None:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields = {part.get_param("name", header="content-disposition"): part
                  for part in message.iter_parts()}  # fmt: skip
        content = fields["file"].get_payload(decode=True)
        purpose = fields["purpose"].get_payload(decode=True).decode()
        file_id = self.server.next_id("file-")
        self.server.files[file_id] = content
        self.send_json(200, file_object(file_id, content, purpose))

    def create_job(self, body: dict) -> None:
        job_id = self.server.next_id("ftjob-")
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "model": body["model"],
            "training_file": body["training_file"],
            "validation_file": None,
            "seed": body.get("seed", 0),
            "hyperparameters": body.get("hyperparameters") or {"n_epochs": "auto"},
            "status": "queued",
            "fine_tuned_model": None,
            "finished_at": None,
            "organization_id": "org-test",
            "result_files": [],
            "trained_tokens": None,
            "error": None,
            "metadata": body.get("metadata"),
        }
        self.server.jobs[job_id] = job
        self.send_json(200, job)

    def poll_job(self, job_id: str) -> dict:
        server = self.server
        job = server.jobs[job_id]
        server.polls[job_id] += 1
        if server.polls[job_id] >= server.polls_to_finish:
            job.update(status="succeeded", fine_tuned_model=f"ft:{job['model']}:test::{job_id}")
            job.update(finished_at=int(time.time()), trained_tokens=1000)
        else:
            job["status"] = "running"
        return job

    def create_openai_batch(self, body: dict) -> None:
        server = self.server
        lines = server.files[body["input_file_id"]].decode().splitlines()
        results = []
        for line in lines:
            request = json.loads(line)
            source = request["body"]["messages"][-1]["content"]
            fault = server.take_fault(source)
            server.answered[source] += 1
            answer = server.chat(request["body"], fault)
            reply = {"status_code": 200, "request_id": "req", "body": answer}
            results.append({"id": server.next_id("batch_req_"), "custom_id": request["custom_id"],
                            "response": reply, "error": None})  # fmt: skip
        batch_id = server.next_id("batch_")
        output = server.next_id("file-")
        server.files[output] = "".join(json.dumps(r) + "\n" for r in results).encode()
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": int(time.time()),
            "output_file_id": None,
            "output": output,
        }
        server.batches[batch_id] = batch
        self.send_json(200, batch)

    def create_anthropic_batch(self, body: dict) -> None:
        server = self.server
        results = []
        for request in body["requests"]:
            source = request["params"]["messages"][-1]["content"]
            fault = server.take_fault(source)
            server.answered[source] += 1
            message = server.message(request["params"], fault)
            results.append({"custom_id": request["custom_id"],
                            "result": {"type": "succeeded", "message": message}})  # fmt: skip
        batch_id = server.next_id("msgbatch_")
        output = server.next_id("file-")
        server.files[output] = "".join(json.dumps(r) + "\n" for r in results).encode()
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": len(results),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },  # fmt: skip
            "created_at": now_iso(),
            "expires_at": now_iso(),
            "ended_at": None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
            "output": output,
        }
        server.batches[batch_id] = batch
        self.send_json(200, batch)

    def poll_batch(self, batch_id: str) -> dict:
        server = self.server
        batch = server.batches[batch_id]
        server.polls[batch_id] += 1
        if server.polls[batch_id] >= server.polls_to_finish:
            if batch_id.startswith("msgbatch_"):
                batch.update(processing_status="ended", ended_at=now_iso())
                batch["results_url"] = f"{server.url}/v1/messages/batches/{batch_id}/results"
            else:
                batch.update(status="completed", output_file_id=batch["output"])
        return {k: v for k, v in batch.items() if k != "output"}


def file_object(file_id: str, content: bytes, purpose: str) -> dict:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": "upload.jsonl",
        "purpose": purpose,
        "status": "processed",
    }


def main() -> None:
    """Serves on its own (for benchmarks/llm_throughput.py, so that the server's threads do not
    share an interpreter with the clients measured): prints the URL, serves until killed."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeApi(latency=args.latency)
    print(server.url, flush=True)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
