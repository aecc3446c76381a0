"""The interactive chat in a real pseudo-terminal (pexpect), on the bundled SmolLM2 with greedy decoding.

The memory check is meaningful because the same question is asked twice: after the number was given (the answer
names it) and after /reset (the answer must not).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

LLMCTL = str(Path(sys.executable).with_name("llmctl"))
PROMPT = ">>> "
STATS = re.compile(r"\d+ tokens, [\d.]+ tok/s")


def _reply(child, text: str) -> str:
    """Send one line and return what the model printed before its speed line."""
    child.sendline(text)
    child.expect(STATS)
    reply = child.before
    child.expect_exact(PROMPT)
    return reply.split(text, 1)[-1]


@pytest.mark.slow
def test_two_dependent_turns_system_reset_and_ctrl_c(tmp_path):
    pytest.importorskip("llama_cpp")
    child = pexpect.spawn(LLMCTL, ["chat", "smollm2-135m", "--engine", "llama.cpp", "-t", "0", "-n", "40",
                                   "--system", "You are a helpful assistant."],
                          encoding="utf-8", timeout=240, dimensions=(40, 200),
                          env={"LLMCTL_HOME": str(Path(__file__).parent / ".cache" / "llmctl-home"),
                               "PATH": "/usr/bin:/bin", "TERM": "dumb", "HOME": str(tmp_path)})
    try:
        child.expect_exact(PROMPT)
        _reply(child, "Remember this number: 42.")
        assert "42" in _reply(child, "What number did I ask you to remember?")

        child.sendline("/reset")
        child.expect("conversation cleared")
        child.expect_exact(PROMPT)
        assert "42" not in _reply(child, "What number did I ask you to remember?")

        child.sendline("/system You are a pirate.")
        child.expect("system prompt set")
        child.sendline("/system")
        child.expect("You are a pirate.")
        child.expect_exact(PROMPT)

        child.sendline("/params max_new_tokens=400")
        child.expect("max_new_tokens = 400")
        child.expect_exact(PROMPT)
        child.sendline("Write a very long story about a dragon and a knight.")
        child.expect_exact("knight.\r\n")  # the echo of the question
        child.expect(r"\w+ \w+ \w+ \w+")  # the reply has started streaming
        child.sendintr()
        child.expect_exact("[reply stopped]")
        child.expect_exact(PROMPT)
        assert _reply(child, "What is 2 plus 2?").strip()

        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
