
B"shapechain_opset9_dynamic_output_0J(Sc+А"#-АЮњщї©ётї/LАЃхїшPА“Ї4Ач­3А<НА