"""NIC: DMA into shared-memory RX/TX descriptor rings and hard IRQs to softirq.

Models a NAPI driver and its device (e.g. drivers/net/ethernet/intel/e1000e/).
"""
