
Binference_opset9_output_0J(6░к=7П=d5©=3Ч╨=VzФ=У╗ф=9Йм=┤^х=Не╪=$си=