
Bparam_fc2.biasJ(´ˆ!½¸tË="q±½MH¾7Ž»=	õ¼.ÿl»\ž½ï.×½zql½