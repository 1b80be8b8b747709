
Binference_opset9_output_2J(‘hÎ=°¸>%ÎŽ=aÆ=X×>F©¯=¬Ã=ø®¿= ª=F£Å=