"""tc's netem words and units (pktpath.tools.tc), without a topology."""

import pytest

from pktpath.pb import nic_pb2
from pktpath.tools.tc import TcError, parse_netem, qdisc_line


def test_netem_words_in_tcs_units():
    netem = parse_netem(["loss", "random", "5%", "delay", "1.5s", "duplicate", "1%", "corrupt", "0.1%", "limit",
                         "1000"])
    assert (netem.loss, netem.delay_ms, netem.duplicate, netem.corrupt) == (0.05, 1500.0, 0.01, 0.001)
    assert parse_netem(["delay", "250us"]).delay_ms == 0.25 and parse_netem(["delay", "2000"]).delay_ms == 2.0
    assert qdisc_line(netem, "eth0") == ("qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 1.5s loss 5% "
                                         "duplicate 1% corrupt 0.1%")
    assert qdisc_line(nic_pb2.Netem(), None).startswith("qdisc pfifo_fast 0: root refcnt 2 bands 3 priomap")


@pytest.mark.parametrize("words, says", [(["loss", "150%"], "between 0% and 100%"), (["delay", "soon"], "not a time"),
                                         (["jitter", "1ms"], 'What is "jitter"'), (["loss"], "needs a value")])
def test_what_tc_would_refuse_is_refused_with_its_reason(words, says):
    with pytest.raises(TcError, match=says):
        parse_netem(words)
