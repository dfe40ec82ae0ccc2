# Integration test registrations: trib_go_test(NAME '^TestPattern$')
