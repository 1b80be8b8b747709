
Bnet_opset13_dynamic_output_0J(¯£À0Óõ¿!ºÀUƒÀ=J
À8y!À:¥Àš¸À”=!ÀtÀ