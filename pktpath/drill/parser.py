"""packetdrill's language (lexer.l, parser.y), read into pktpath.drill.script's shapes.

A token is what lexer.l makes of the text: numbers (a FLOAT has a point, `-1` is one
INTEGER), `...`, `--options`, "strings", `backquoted commands`, %{ python }%, words, and
any other character as itself. Errors read as packetdrill's: "FILE:LINE: parse error at
'TOKEN': what" or "FILE:LINE: semantic error: what".
"""

import re
from dataclasses import dataclass

from pktpath.drill.script import (
    ABSOLUTE, ABSOLUTE_RANGE, ANY, RELATIVE, RELATIVE_RANGE, Code, Command, Event, Packet, Script, Syscall, TcpOption,
    Time,
)

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<code>%\{.*?\}%)
  | (?P<command>`[^`]*`)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<option>--[a-zA-Z0-9_]+(?:=[^\s]*)?)
  | (?P<ellipsis>\.\.\.)
  | (?P<ipv4>\d+\.\d+\.\d+\.\d+)
  | (?P<hex>0x[0-9a-fA-F]+(?![a-zA-Z0-9_]))
  | (?P<float>-?\d*\.\d+(?!\w))
  | (?P<int>-?\d+(?!\w))
  | (?P<word>[a-zA-Z0-9_]+)
  | (?P<char>.)
""", re.VERBOSE | re.DOTALL)


@dataclass
class Token:
    kind: str      # int float hex ipv4 string word option ellipsis command code char
    text: str
    line: int


class DrillSyntaxError(ValueError):
    """A script packetdrill would refuse; the text is packetdrill's line."""


def tokenize(text: str, path: str = "<script>") -> list[Token]:
    tokens, line, pos = [], 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # an unclosed /* or %{ or ` or "
            raise DrillSyntaxError(f"{path}:{line}: parse error at '{text[pos:pos + 10]}': unterminated")
        kind, value = m.lastgroup, m.group()
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, value, line))
        line += value.count("\n")
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, text: str, path: str = "<script>") -> None:
        self.path = path
        self.tokens = tokenize(text, path)
        self.i = 0

    # -- tokens ---------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def at(self, text: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.text == text and tok.kind in ("char", "word", "ellipsis")

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise DrillSyntaxError(f"{self.path}:{last}: parse error at 'end of file': syntax error")
        self.i += 1
        return tok

    def error(self, what: str = "syntax error", tok: Token | None = None):
        tok = tok or self.peek() or (self.tokens[-1] if self.tokens else Token("char", "", 1))
        return DrillSyntaxError(f"{self.path}:{tok.line}: parse error at '{tok.text}': {what}")

    def semantic(self, line: int, what: str):
        return DrillSyntaxError(f"{self.path}:{line}: semantic error: {what}")

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(f"expected '{text}'")
        return self.next()

    def integer(self) -> int:
        tok = self.next()
        if tok.kind == "int":
            return int(tok.text)
        if tok.kind == "hex":
            return int(tok.text, 16)
        raise self.error("expected an integer", tok)

    def number(self) -> float:
        tok = self.next()
        if tok.kind in ("int", "float"):
            return float(tok.text)
        raise self.error("expected a time", tok)

    # -- the script ---------------------------------------------------------------------------
    def script(self) -> Script:
        options = {}
        while self.peek() is not None and self.peek().kind == "option":
            name, _, value = self.next().text[2:].partition("=")
            options[name] = value
        init = self.next().text[1:-1] if self.peek() is not None and self.peek().kind == "command" else None
        events = []
        cleanup = None
        while self.peek() is not None:
            if self.peek().kind == "command" and self.peek(1) is None:
                cleanup = self.next().text[1:-1]
                break
            events.append(self.event())
        return Script(self.path, events, options, init, cleanup)

    def event(self) -> Event:
        line = self.peek().line
        time = self.time(line)
        tok = self.peek()
        if tok is None:
            raise self.error("expected an action after the time")
        if tok.kind == "char" and tok.text in "<>":
            action = self.packet()
            if time.kind in (ANY, ABSOLUTE_RANGE, RELATIVE_RANGE) and action.direction == "<":
                raise self.semantic(line, "event time <star> or range can only be used with outbound packets")
        elif tok.kind == "command":
            action = Command(self.next().text[1:-1])
        elif tok.kind == "code":
            action = Code(self.next().text[2:-2].strip())
        elif tok.kind == "word" and self.at("(", 1):
            action = self.syscall()
        else:
            raise self.error()
        if time.kind in (ANY, ABSOLUTE_RANGE, RELATIVE_RANGE) and not isinstance(action, Packet):
            raise self.semantic(line, "event time <star> or range can only be used with outbound packets")
        if time.blocking_end_usecs is not None and not isinstance(action, Syscall):
            raise self.semantic(line, "an end time (...) is for a blocking system call")
        return Event(line, time, action)

    def time(self, line: int) -> Time:
        if self.at("*"):
            self.next()
            return Time(ANY)
        relative = self.at("+")
        if relative:
            self.next()
        start = _usecs(self.number())
        time = Time(RELATIVE if relative else ABSOLUTE, start)
        if self.at("~"):
            self.next()
            end_relative = self.at("+")
            if end_relative:
                self.next()
            if end_relative != relative:
                raise self.semantic(line, "a time range's ends must both be relative or both absolute")
            time = Time(RELATIVE_RANGE if relative else ABSOLUTE_RANGE, start, _usecs(self.number()))
            if time.end_usecs < start:
                raise self.semantic(line, "time range is backwards")
        if self.peek() is not None and self.peek().kind == "ellipsis":
            self.next()
            time.blocking_end_usecs = _usecs(self.number())
        return time

    # -- packets ---------------------------------------------------------------------------
    def packet(self) -> Packet:
        direction = self.next().text
        line = self.tokens[self.i - 1].line
        pkt = Packet(direction, "tcp")
        if self.at("[") or self.at("("):
            self.ip_info(pkt)
        if self.at("udp"):
            self.next()
            pkt.protocol = "udp"
            self.ports(pkt)
            self.expect("(")
            pkt.length = self.integer()
            self.expect(")")
            return pkt
        if self.at("icmp"):
            self.next()
            return self.icmp(pkt)
        self.ports(pkt)
        pkt.flags = self.flags()
        pkt.seq = self.integer()
        self.expect(":")
        end = self.integer()
        self.expect("(")
        pkt.length = self.integer()
        self.expect(")")
        if (pkt.seq + pkt.length) & 0xFFFFFFFF != end & 0xFFFFFFFF:
            raise self.semantic(line, "inconsistent TCP sequence numbers and payload size")
        while True:
            if self.at("ack"):
                self.next()
                pkt.ack = self.integer()
            elif self.at("win"):
                self.next()
                pkt.win = self.integer()
            elif self.at("urg"):
                self.next()
                pkt.urg = self.integer()
            else:
                break
        pkt.options = []
        if self.at("<"):
            pkt.options = self.tcp_options(direction, line)
        if direction == "<" and pkt.win is None:
            raise self.semantic(line, "window must be specified for inbound packets")
        return pkt

    def ip_info(self, pkt: Packet) -> None:
        close = "]" if self.next().text == "[" else ")"
        while not self.at(close):
            word = self.next().text
            if word in ("noecn", "ect0", "ect1", "ce", "ect01"):
                pkt.ecn = word
            elif word == "tos":
                pkt.tos = self.integer()
            elif word == "ttl":
                pkt.ttl = self.integer()
            elif word == "flowlabel":
                self.integer()  # IPv6's: pktpath runs IPv4 scripts
            elif word != ",":
                raise self.error(f"unknown IP annotation '{word}'", self.tokens[self.i - 1])
        self.next()

    def ports(self, pkt: Packet) -> None:
        if self.peek() is not None and self.peek().kind == "int" and self.at(">", 1):
            pkt.sport = self.integer()
            self.next()
            pkt.dport = self.integer()

    def flags(self) -> str:
        if self.at("."):
            self.next()
            return "."
        if self.at("-"):
            self.next()
            return ""
        tok = self.next()
        if tok.kind != "word":
            raise self.error("expected TCP flags", tok)
        bad = [c for c in tok.text if c not in "FSRPEWAU01234567"]
        if bad:
            raise self.semantic(tok.line, f"Invalid TCP flag: '{bad[0]}'")
        if self.at("."):
            self.next()
            return tok.text + "."
        return tok.text

    def tcp_options(self, direction: str, line: int) -> list[TcpOption] | None:
        self.expect("<")
        if self.peek() is not None and self.peek().kind == "ellipsis":
            self.next()
            self.expect(">")
            if direction == "<":
                raise self.semantic(line, "<...> for TCP options can only be used with outbound packets")
            return None
        options = []
        while True:
            word = self.next().text
            if word in ("nop", "eol", "sackOK"):
                options.append(TcpOption(word))
            elif word in ("mss", "wscale"):
                options.append(TcpOption(word, value=self.integer()))
            elif word == "TS":
                self.expect("val")
                val = self.integer()
                self.expect("ecr")
                options.append(TcpOption("TS", val=val, ecr=self.integer()))
            elif word == "sack":
                blocks = []
                while self.peek() is not None and self.peek().kind == "int":
                    left = self.integer()
                    self.expect(":")
                    blocks.append((left, self.integer()))
                options.append(TcpOption("sack", blocks=tuple(blocks)))
            elif word in ("md5", "FO", "FOEXP"):
                data = b""
                if self.peek() is not None and self.peek().kind in ("word", "int") and not self.at(","):
                    data = bytes.fromhex(self.next().text)
                options.append(TcpOption(word, data=data))
            else:
                raise self.error(f"unknown TCP option '{word}'", self.tokens[self.i - 1])
            if self.at(">"):
                self.next()
                break
            self.expect(",")
        excess = sum(o.size for o in options) % 4
        if excess:
            raise self.semantic(line, "TCP options are not padded correctly to ensure TCP header is a multiple "
                                      f"of 4 bytes: {excess} excess bytes")
        return options

    def icmp(self, pkt: Packet) -> Packet:
        pkt.protocol = "icmp"
        pkt.icmp_type = self.next().text
        if self.peek() is not None and self.peek().kind == "word" and self.peek().text not in ("mtu", "id"):
            pkt.icmp_code = self.next().text
        while self.at("mtu") or self.at("id"):
            word = self.next().text
            value = self.integer()
            if word == "mtu":
                pkt.mtu = value
        if self.at("["):
            self.next()
            echoed = Packet(pkt.direction, "tcp")
            if self.at("udp"):
                self.next()
                echoed.protocol = "udp"
                self.expect("(")
                echoed.length = self.integer()
                self.expect(")")
            else:
                echoed.seq = self.integer()
                self.expect(":")
                self.integer()
                self.expect("(")
                echoed.length = self.integer()
                self.expect(")")
            self.expect("]")
            pkt.echoed = echoed
        return pkt

    # -- system calls -----------------------------------------------------------------------
    def syscall(self) -> Syscall:
        name = self.next().text
        self.expect("(")
        args = self.expression_list(")")
        self.expect("=")
        result = self.integer()
        errno = None
        if self.peek() is not None and self.peek().kind == "word" and not self.at("("):
            errno = self.next().text
        if self.at("("):  # the note, never checked: skip to its closing parenthesis
            depth = 0
            while True:
                tok = self.next()
                depth += tok.text == "(" and tok.kind == "char"
                depth -= tok.text == ")" and tok.kind == "char"
                if depth == 0:
                    break
        return Syscall(name, args, result, errno)

    def expression_list(self, close: str) -> list:
        items = []
        while not self.at(close):
            items.append(self.expression())
            if not self.at(close):
                self.expect(",")
        self.next()
        return items

    def expression(self):
        """A syscall argument: ('...',), ('int', n), ('str', s), ('sym', NAME), ('list', [..]),
        ('struct', [..]), ('call', NAME, [..]), ('assign', lhs, rhs) or ('or', [..])."""
        terms = [self.term()]
        while self.at("|"):
            self.next()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def term(self):
        tok = self.next()
        if tok.kind == "ellipsis":
            return ("...",)
        if tok.kind in ("int", "hex"):
            return ("int", int(tok.text, 16) if tok.kind == "hex" else int(tok.text))
        if tok.kind == "string":
            text = tok.text[1:-1].encode().decode("unicode_escape")
            while self.peek() is not None and self.peek().kind == "string":  # "a" "b": concatenated
                text += self.next().text[1:-1].encode().decode("unicode_escape")
            return ("str", text)
        if tok.text == "[" and tok.kind == "char":
            return ("list", self.expression_list("]"))
        if tok.text == "{" and tok.kind == "char":
            return ("struct", self.expression_list("}"))
        if tok.kind == "word":
            node = ("sym", tok.text)
            if self.at("("):
                self.next()
                node = ("call", tok.text, self.expression_list(")"))
            if self.at("="):
                self.next()
                node = ("assign", node, self.expression())
            return node
        raise self.error("expected an expression", tok)


def _usecs(seconds: float) -> int:
    if seconds < 0:
        raise DrillSyntaxError("negative time")
    return int(seconds * 1_000_000 + 0.5)


def parse(text: str, path: str = "<script>") -> Script:
    return Parser(text, path).script()


def parse_file(path: str) -> Script:
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), path)
