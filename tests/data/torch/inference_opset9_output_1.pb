
Binference_opset9_output_1J(ÖÍÙ=Ò¿>ê¤=ùµ=…Wë=‹t¹=¨Æä=èd´=Â†¿=Q´=