
B#shapechain_opset13_dynamic_output_2JPà28À¨÷:À¬|ÀŞóâ¿;ÀÑ‘Àj’
Àp ÀöPÀx‡À¼-2Àb‚@ÀB¿ÀÔğ¿ØµÀ³$ş¿MªÀÅÑ#Àí#À §À