// A minimal ap_axiu (AXI4-Stream word with side channels) for C simulation with g++, written
// for rfpga (no proprietary headers). Vitis HLS uses its own ap_axi_sdata.h, whose
// ap_axiu<D, U, TI, TD> has these fields; TDATA is D bits, TKEEP/TSTRB one bit per byte.
#ifndef RFPGA_SIM_AP_AXI_SDATA_H
#define RFPGA_SIM_AP_AXI_SDATA_H

#include "ap_int.h"

template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<(U > 0 ? U : 1)> user;
    ap_uint<1> last;
    ap_uint<(TI > 0 ? TI : 1)> id;
    ap_uint<(TD > 0 ? TD : 1)> dest;
};

#endif
