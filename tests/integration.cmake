# Integration test registrations: trib_go_test(NAME '^TestPattern$')
trib_go_test(go_harness "^TestGoHarness")
