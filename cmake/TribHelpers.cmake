# trib_test(NAME SOURCES... [LIBS libs...] [LABELS labels...] [TIMEOUT s])
#
# One executable per module test, linked against the project's static
# libraries and cmocka, registered with ctest under a label and a timeout.
function(trib_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT TRIB_TESTS)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}"
                       TIMEOUT ${T_TIMEOUT})
endfunction()

# trib_fuzzer(NAME SOURCE LIBS...): a libFuzzer target (TRIB_FUZZ=ON only).
function(trib_fuzzer name source)
  if(NOT TRIB_FUZZ)
    return()
  endif()
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${ARGN})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()
