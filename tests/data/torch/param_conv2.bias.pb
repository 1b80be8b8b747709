Bparam_conv2.biasJPğÕ<:a¿»ºªb=[^¼rV;@m%½Lõ½×â•¼èl½ò‹
¼môY<Y©2½¥_X½†še=ÂØá¼¡İ>½Ç‚¼š ó¼„Aw½äL
¼