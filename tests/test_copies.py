"""pktpath.tools.copies and pktpath.trace without services: the movements its report reads from
records, and which packets are traced."""

from pktpath.tools.copies import CASES, movements, report, summary
from pktpath.pb import skbuff_pb2 as pb


def record(id_, *events):
    r = pb.SkBuff(id=id_, origin_host="A", sampled=True)
    for kind, host, func, ts, nbytes in events:
        r.events.add(kind=kind, layer=pb.LAYER_NIC, host=host, func=func, ts_ns=ts, bytes=nbytes)
    return r


def test_an_event_carried_by_two_records_counts_once_and_two_packets_twice():
    tx = (pb.DMA, "A", "ndo_start_xmit", 10, 1514)
    rx = (pb.DMA, "B", "napi_gro_receive", 20, 1514)
    records = [record(1, tx), record(1, tx, rx), record(2, tx, rx)]  # packet 2: same time, same size
    moves = movements(records)
    assert [m.func for m in moves] == ["ndo_start_xmit", "ndo_start_xmit", "napi_gro_receive", "napi_gro_receive"]
    assert summary(moves)["DMA"] == 4 and summary(moves)["DMA bytes"] == 4 * 1514


def test_enter_and_exit_events_are_not_movements():
    assert movements([record(1, (pb.ENTER, "A", "ip_rcv", 1, 100), (pb.FREE, "A", "consume_skb", 2, 0))]) == []


def test_the_report_has_a_summary_row_per_case_and_a_table_each_in_markdown_for_docs():
    lines = report([(case, []) for case in CASES], as_markdown=True)
    assert sum(line.startswith(f"| {case.name} |") for case in CASES for line in lines) == len(CASES)
    assert sum(line.startswith("### ") for line in lines) == len(CASES)


def test_on_a_terminal_the_report_is_aligned_columns_with_numbers_to_the_right():
    moves = movements([record(1, (pb.COPY, "A", "skb_copy_from_iter", 1, 100), (pb.DMA, "A", "ndo_start_xmit", 2,
                                                                                 1514))])
    lines = report([(CASES[0], moves), (CASES[1], [])])
    assert not any("|" in line for line in lines)
    head = lines[0]
    assert head.split() == ["case", "CPU", "copies", "(COPY)", "bytes", "copied", "clones", "(CLONE)", "device",
                            "copies", "(DMA)"]
    first = next(line for line in lines if line.startswith(CASES[0].name))
    assert first.split()[-4:] == ["1", "100", "0", "1"]
    assert first.rstrip().endswith(" 1") and len(first) == len(head)  # right-aligned under its heading
