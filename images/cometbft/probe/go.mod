module hcops.local/images/cometbft/probe

go 1.22
