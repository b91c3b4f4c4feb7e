"""The names of the registered training losses, readable without importing torch: argument checks (a bad
`clipcomp train` call) answer in well under a second. Each name's module registers the class with
`@register_loss`; tests/test_registry_and_configs.py checks that this list and the registry agree."""

LOSS_MODULES = {
    "ceclip": "clipcomp.train.losses.ceclip",
    "cement": "clipcomp.train.losses.cement",
    "cement-hinge": "clipcomp.train.losses.cement",
    "infonce": "clipcomp.train.losses.infonce",
    "negclip": "clipcomp.train.losses.negclip",
    "unicl": "clipcomp.train.losses.unicl",
}
