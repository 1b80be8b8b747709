
Bnet_opset9_output_2J(!2À À‡ÀDÀ¡­ÀQ?Àô—Àı-À ÀÏkÀ