# Integration test registrations: trib_go_test(NAME "^TestPattern") -- use double quotes: CMake passes single quotes through literally and the pattern would match nothing.
trib_go_test(go_harness "^TestGoHarness")
trib_go_test(migrate "^TestMigrate" TIMEOUT 600)
