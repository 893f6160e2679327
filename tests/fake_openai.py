"""A small OpenAI-compatible chat server for tests, served over real HTTP on loopback.

It answers from the passages it is sent, like an obedient model: the first sentence of
passage 1 with a marker [1], plus a marker [99] that points at no passage (the client
must remove it). A question containing "没有答案" gets the no-answer phrase.
"""

from __future__ import annotations

import re
import time

from fastapi import FastAPI, Request

from rag.answer.answering import NO_ANSWER_ZH
from tests.servers import ServerThread

_PASSAGE = re.compile(r'<passage n="(\d+)"[^>]*>(.*?)</passage>', re.S)


def make_app(requests: list[dict]) -> FastAPI:
    """The app; every request body is appended to ``requests`` for the test to inspect."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = await request.json()
        requests.append({"body": body, "authorization": request.headers.get("authorization")})
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        passages = _PASSAGE.findall(user)
        if "没有答案" in user.split("问题：")[-1] or not passages:
            content = NO_ANSWER_ZH
        else:
            first = re.split(r"(?<=[。！？])", passages[0][1])[0]
            content = f"{first}[1] 另见[99]。"
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    return app


class FakeOpenAIServer(ServerThread):
    """The fake app on 127.0.0.1 and a free port; ``requests`` records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        super().__init__(make_app(self.requests))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"
