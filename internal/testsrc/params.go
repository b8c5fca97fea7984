package testsrc

// seqParams is what the SPS says and the slice headers depend on.
type seqParams struct {
	wMbs, hMbs      int // coded size in macroblocks
	cropBottom      int // luma rows cropped at the bottom (coded height - height)
	fps             int
	levelIDC        uint8
	log2MaxFrameNum uint // 4..16
}

// appendSPS appends the sequence parameter set (7.3.2.1.1) as a NAL unit.
//
// Constrained Baseline (profile_idc 66, constraint_set0 and 1) with
// pic_order_cnt_type 2: output order is decode order, so no POC is sent.
// One reference frame is all a P_Skip copy needs. The VUI (E.1.1) gives the
// frame rate (time_scale is in fields, hence 2*fps) and
// bitstream_restriction with max_num_reorder_frames 0 and
// max_dec_frame_buffering 1, which lets a decoder output each picture as
// soon as it is decoded instead of filling its DPB first.
func appendSPS(dst []byte, p seqParams) []byte {
	var w bitWriter
	w.reset(append(dst, 0x67)) // nal_ref_idc 3, nal_unit_type 7
	w.u(8, 66)                 // profile_idc: Baseline
	w.u(8, 0xc0)               // constraint_set0_flag, constraint_set1_flag, 0, 0, 0, 0, reserved_zero_2bits
	w.u(8, uint32(p.levelIDC)) // level_idc
	w.ue(0)                    // seq_parameter_set_id
	w.ue(uint32(p.log2MaxFrameNum - 4))
	w.ue(2)       // pic_order_cnt_type
	w.ue(1)       // max_num_ref_frames
	w.flag(false) // gaps_in_frame_num_value_allowed_flag
	w.ue(uint32(p.wMbs - 1))
	w.ue(uint32(p.hMbs - 1)) // pic_height_in_map_units_minus1 (frames only)
	w.flag(true)             // frame_mbs_only_flag
	w.flag(true)             // direct_8x8_inference_flag
	w.flag(p.cropBottom > 0) // frame_cropping_flag
	if p.cropBottom > 0 {
		w.ue(0)                        // frame_crop_left_offset
		w.ue(0)                        // frame_crop_right_offset
		w.ue(0)                        // frame_crop_top_offset
		w.ue(uint32(p.cropBottom / 2)) // in units of CropUnitY = 2 for 4:2:0 frames
	}
	w.flag(true) // vui_parameters_present_flag

	w.flag(true)  // aspect_ratio_info_present_flag
	w.u(8, 1)     // aspect_ratio_idc: 1:1 square pixels
	w.flag(false) // overscan_info_present_flag
	w.flag(false) // video_signal_type_present_flag
	w.flag(false) // chroma_loc_info_present_flag
	w.flag(true)  // timing_info_present_flag
	w.u(32, 1)    // num_units_in_tick
	w.u(32, uint32(2*p.fps))
	w.flag(true)  // fixed_frame_rate_flag
	w.flag(false) // nal_hrd_parameters_present_flag
	w.flag(false) // vcl_hrd_parameters_present_flag
	w.flag(false) // pic_struct_present_flag
	w.flag(true)  // bitstream_restriction_flag
	w.flag(true)  // motion_vectors_over_pic_boundaries_flag
	w.ue(0)       // max_bytes_per_pic_denom: no limit
	w.ue(0)       // max_bits_per_mb_denom: no limit (an I_PCM macroblock is 3072+ bits)
	w.ue(11)      // log2_max_mv_length_horizontal, as x264 writes; all vectors are zero
	w.ue(11)      // log2_max_mv_length_vertical
	w.ue(0)       // max_num_reorder_frames
	w.ue(1)       // max_dec_frame_buffering
	return w.trailing()
}

// appendPPS appends the picture parameter set (7.3.2.2) as a NAL unit:
// CAVLC, one slice group, QP 26 (unused: no residual is ever coded), and
// deblocking_filter_control_present_flag so each slice can turn the loop
// filter off. With the filter off, decoded pictures equal the source
// exactly, which the P_Skip copies rely on.
func appendPPS(dst []byte) []byte {
	var w bitWriter
	w.reset(append(dst, 0x68)) // nal_ref_idc 3, nal_unit_type 8
	w.ue(0)                    // pic_parameter_set_id
	w.ue(0)                    // seq_parameter_set_id
	w.flag(false)              // entropy_coding_mode_flag: CAVLC
	w.flag(false)              // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)                    // num_slice_groups_minus1
	w.ue(0)                    // num_ref_idx_l0_default_active_minus1
	w.ue(0)                    // num_ref_idx_l1_default_active_minus1
	w.flag(false)              // weighted_pred_flag
	w.u(2, 0)                  // weighted_bipred_idc
	w.se(0)                    // pic_init_qp_minus26
	w.se(0)                    // pic_init_qs_minus26
	w.se(0)                    // chroma_qp_index_offset
	w.flag(true)               // deblocking_filter_control_present_flag
	w.flag(false)              // constrained_intra_pred_flag
	w.flag(false)              // redundant_pic_cnt_present_flag
	return w.trailing()
}

// NAL unit header bytes of the slices. Every picture is a reference for the
// next one, so nal_ref_idc is never 0 (3 for IDR, 2 for P, as x264 does).
const (
	nalHeaderIDR = 0x65 // nal_ref_idc 3, nal_unit_type 5
	nalHeaderP   = 0x41 // nal_ref_idc 2, nal_unit_type 1
)
