//! The list of behaviours: the one place a new behaviour is added.

/// Hands the list of behaviours to `__behaviour_expand!` with `$mode` (`table` or `tests`).
#[doc(hidden)]
#[macro_export]
macro_rules! __behaviour_list {
    (table) => {
        $crate::__behaviour_list!(@expand table)
    };
    (tests) => {
        $crate::__behaviour_list! { @expand tests }
    };
    (@expand $mode:ident) => {
        $crate::__behaviour_expand! { $mode
            protocols {
                protocol_echo_roundtrip: Shared,
                protocol_half_close: Shared,
                protocol_back_pressure: Shared,
                server_survives_emfile: Exclusive,
            }
            transfers {
                sock_sendfile_sends_file_ranges: Shared,
                cancelled_recvfrom_loses_no_datagram: Shared,
                unix_stream_split_halves: Shared,
            }
            io_traits {
                trait_reads_are_partial_then_eof: Shared,
                trait_write_after_close_is_an_error: Shared,
                trait_accepted_writes_go_out_without_a_flush: Shared,
                dropped_stream_still_sends_what_it_accepted: Shared,
                try_sock_send_sends_at_once_or_declines_in_order: Shared,
                trait_read_line_on_a_socket: Shared,
                trait_one_mib_both_ways_at_once: Shared,
                cancelled_trait_reads_lose_nothing: Shared,
                cancelled_trait_writes_lose_nothing: Shared,
                pipe_traits_read_line_and_bulk: Shared,
            }
            tls {
                tls_echo_of_one_mib: Shared,
            }
            streams {
                tcp_split_halves_echo: Shared,
                tcp_half_close_and_addresses: Shared,
                reuse_port_shares_a_port: Shared,
                listener_rebinds_after_close: Shared,
                port_is_free_once_the_loop_is_closed: Shared,
                port_is_free_once_the_server_task_is_cancelled: Shared,
                unix_stream_echo: Shared,
                udp_datagrams: Shared,
                wait_for_times_out_without_losing_data: Shared,
                getaddrinfo_and_connect_host: Shared,
                broken_pipe_and_wrong_kind_are_errors: Shared,
                stream_server_echoes_many_clients: Shared,
                connect_timeout_times_out: Shared,
                dropped_stream_fd_reuse_is_safe: Shared,
            }
            scheduler {
                a_waker_woken_from_another_thread_after_its_task_finished_does_nothing: Shared,
                a_waker_outliving_its_loop_is_harmless: Shared,
                cancel_of_a_task_waiting_on_a_cross_thread_waker_is_prompt: Shared,
                timers_cancelled_then_firing_keep_deadline_then_insertion_order: Shared,
                a_panicking_callback_is_reported_and_the_batch_goes_on_in_order: Shared,
            }
            scheduling {
                call_soon_runs_in_fifo_order: Shared,
                call_soon_never_runs_inline: Shared,
                iteration_runs_only_ready_callbacks: Shared,
                stop_lets_iteration_finish: Shared,
                stop_before_run_forever_runs_one_iteration: Shared,
                stop_restart_runs_each_callback_once: Shared,
                cancelled_handle_never_runs: Shared,
                handle_cancel_reports_cancelled: Shared,
            }
            timers {
                timers_never_fire_early: Shared,
                sub_millisecond_timers_never_fire_early: Shared,
                sleep_never_returns_early: Shared,
                loop_time_is_monotonic: Shared,
                past_deadlines_run_next_iteration_in_order: Shared,
                equal_deadlines_keep_insertion_order: Shared,
                timers_fire_in_deadline_order: Shared,
                cancelled_timer_never_runs: Shared,
                timer_handle_when_and_cancel: Shared,
                many_cancelled_timers_do_not_run: Shared,
                huge_delays_accepted_and_cancellable: Shared,
            }
            stats {
                stats_count_what_the_loop_holds: Shared,
                stats_count_time_and_slow_callbacks: Shared,
                stats_count_executor_threads_and_queue: Shared,
                loop_publishes_its_tasks_and_stats_for_a_monitor: Shared,
                idle_receives_hold_no_buffers: Shared,
                blocked_loop_lends_idle_receive_buffers: Shared,
                lending_rounds_stop_once_nothing_holds: Shared,
                dropped_idle_receive_loses_no_bytes: Shared,
                busy_receives_keep_their_buffers: Shared,
                new_connections_wait_without_buffers: Shared,
            }
            lifecycle {
                run_until_complete_returns_output: Shared,
                run_until_complete_stopped_before_complete: Shared,
                nested_run_is_already_running: Shared,
                run_until_complete_reports_panic: Shared,
                panicking_callback_goes_to_exception_handler: Shared,
                panicking_exception_handler_is_contained: Shared,
                debug_mode_reports_slow_callback: Shared,
                debug_mode_reports_slow_task_poll_with_name_and_site: Shared,
                debug_mode_reports_a_task_that_never_ran_at_close: Shared,
                close_twice_is_ok: Shared,
                close_while_running_is_refused: Shared,
                closed_loop_refuses_everything: Shared,
                close_drops_pending_callbacks_and_cancels_tasks: Shared,
                loop_equality_is_identity: Shared,
            }
            tasks {
                tasks_start_in_creation_order: Shared,
                awaiting_task_gives_output: Shared,
                cancelled_task_gives_cancelled: Shared,
                panicking_task_gives_panicked: Shared,
                dropping_task_does_not_cancel_it: Shared,
                cancel_is_prompt: Shared,
                waker_from_other_thread_resumes_task: Shared,
                yield_now_interleaves_tasks: Shared,
                get_running_loop_inside_and_outside: Shared,
                a_task_awaiting_itself_panics: Shared,
                current_task_is_the_task_being_run: Shared,
                task_ids_are_unique_and_stable: Shared,
                task_state_follows_its_life: Shared,
                task_created_at_is_the_callers_line: Shared,
                task_polls_are_counted: Shared,
                task_busy_and_idle_are_timed: Shared,
            }
            sync {
                gather_gives_outputs_in_given_order: Shared,
                gather_returns_first_failure_and_others_keep_running: Shared,
                dropping_gather_cancels_unfinished_tasks: Shared,
                gather_settled_gives_every_outcome: Shared,
                as_completed_yields_in_completion_order: Shared,
                shield_keeps_task_running_when_dropped: Shared,
                task_group_join_waits_for_every_child: Shared,
                task_group_failure_cancels_siblings: Shared,
                task_group_user_cancelled_child_does_not_fail_group: Shared,
                dropping_unjoined_task_group_cancels_children: Shared,
                lock_is_fifo_and_newcomers_queue_behind_woken_waiter: Shared,
                cancelled_lock_waiters_leak_nothing: Shared,
                semaphore_is_fifo_and_cancelled_acquires_leak_no_permit: Shared,
                event_set_wakes_every_waiter: Shared,
                condition_notifies_in_order_and_passes_on_cancelled_wakeups: Shared,
                barrier_lets_parties_through_with_arrival_indices: Shared,
            }
            sync_queues {
                queues_keep_fifo_lifo_and_priority_order: Shared,
                queue_getters_are_served_first_come_first_served: Shared,
                bounded_queue_putters_wait_in_order: Shared,
                cancelled_get_loses_no_item: Shared,
                cancelled_put_loses_no_slot_and_adds_no_item: Shared,
                queue_join_waits_for_every_task_done: Shared,
            }
            threads {
                call_soon_threadsafe_wakes_blocked_loop: Shared,
                call_soon_threadsafe_keeps_fifo_with_call_soon: Shared,
                threadsafe_calls_mixed_with_timers_run_once: Shared,
                loop_handle_stop_wakes_blocked_loop: Shared,
                threadsafe_call_before_run_forever_runs: Shared,
                loop_handle_after_close_is_closed: Shared,
            }
            readers {
                reader_runs_every_iteration_while_readable: Shared,
                reader_tolerates_spurious_readiness: Shared,
                re_adding_reader_replaces_it: Shared,
                remove_reader_true_then_false: Shared,
                remove_reader_then_close_is_safe: Shared,
                readiness_returns_after_drain: Shared,
                writer_fires_when_writable: Shared,
                reader_and_writer_share_an_fd: Shared,
                reader_on_pipe_sees_data_and_eof: Shared,
                add_reader_bad_fd_is_error: Shared,
                add_reader_on_regular_file_is_refused: Shared,
                watch_of_a_closed_fd_is_never_called: Exclusive,
            }
            sockets {
                sock_sendall_1mib_arrives_byte_exact: Shared,
                sock_recv_fills_up_to_capacity: Shared,
                sock_recv_gives_zero_at_peer_close: Shared,
                sock_connect_refused: Shared,
                sock_accept_returns_peer_address: Shared,
                cancelled_sock_recv_loses_no_data: Shared,
                dropped_receives_leave_bytes_in_delivery_order: Shared,
                dropped_receive_hands_its_bytes_to_the_waiting_one: Shared,
                cancelled_receiving_tasks_leave_bytes_in_delivery_order: Shared,
                cancelled_sock_accept_loses_no_connection: Shared,
                cancelled_sock_connect_can_be_retried: Shared,
                cancelled_sock_sendall_keeps_stream_consistent: Shared,
                concurrent_connections_echo: Shared,
                peer_reset_is_error_on_that_connection_only: Shared,
            }
            registered {
                registered_socket_sees_fin_after_short_read: Shared,
                registered_socket_receives_after_short_read: Shared,
                registered_sockets_transfer_both_ways: Shared,
                registered_fd_reuse_and_into_inner: Shared,
                registered_blocking_listener_accepts_without_blocking: Shared,
                registered_socket_with_a_reader: Shared,
                registered_receives_waiting_together_complete_in_order: Shared,
                registered_cancelled_waiting_receive_passes_its_turn: Shared,
                borrowed_blocking_listener_never_blocks_sock_accept: Shared,
            }
            executor {
                run_in_executor_returns_value_from_other_thread: Shared,
                run_in_executor_reports_panic: Shared,
                run_in_executor_on_closed_loop_is_cancelled: Shared,
                executor_job_outliving_cancelled_task_is_safe: Shared,
                executor_job_starts_without_being_awaited: Shared,
                executor_does_not_block_loop: Shared,
                executor_runs_jobs_in_parallel: Shared,
                many_executor_jobs_all_complete: Shared,
                run_in_executor_on_uses_given_executor: Shared,
                set_default_executor_is_used: Shared,
                shutdown_default_executor_waits_for_jobs: Shared,
                close_does_not_wait_for_a_running_job: Shared,
                default_executor_is_bounded: Shared,
            }
            processes {
                exit_code_is_returncode: Shared,
                killed_child_gives_minus_signal: Shared,
                communicate_moves_megabytes_both_ways: Shared,
                no_zombie_and_no_leaked_pipes: Exclusive,
                dropped_process_is_reaped: Shared,
                kill_while_output_unread: Shared,
                pipe_read_line_by_line: Shared,
                pipes_and_null_stdio: Shared,
                stderr_into_stdout_pipe: Shared,
                subprocess_shell_runs_command_line: Shared,
                subprocess_errors_are_clear: Shared,
            }
            signals {
                invalid_signals_are_refused: Exclusive,
                signal_wakes_blocked_loop_once_on_its_thread: Exclusive,
                raised_signal_runs_handler_later: Exclusive,
                remove_signal_handler_restores_the_disposition_found: Exclusive,
                removal_restores_an_ignored_signal: Exclusive,
                re_adding_signal_handler_replaces_it: Exclusive,
                two_loops_share_a_signal: Exclusive,
                close_releases_signal_handlers: Exclusive,
            }
            sigpipe {
                sendfile_to_closed_peer_is_an_error_not_sigpipe: Exclusive,
                sendall_to_closed_peer_is_an_error_not_sigpipe: Exclusive,
                pipe_write_to_closed_reader_is_an_error_not_sigpipe: Exclusive,
                removed_sigpipe_handler_leaves_sendfile_safe: Exclusive,
            }
            files {
                file_reads_and_writes_round_trip_at_offsets: Shared,
                file_errors_are_std_errors: Shared,
                file_append_create_new_and_truncate: Shared,
                file_metadata_agrees_with_std: Shared,
                file_rename_remove_and_create_dir_all: Shared,
                dropped_file_open_leaks_no_fd: Exclusive,
                dropped_file_reads_and_writes_are_safe: Shared,
            }
            fds {
                close_releases_loop_fds: Exclusive,
                hundred_loops_do_not_leak_fds: Exclusive,
                dropped_loop_with_pending_work_leaks_nothing: Exclusive,
                loops_in_a_reference_cycle_are_closed_at_thread_exit: Exclusive,
                dropped_unclosed_loop_is_reported_in_debug_mode: Shared,
                hundred_connections_do_not_leak_fds: Exclusive,
                remove_reader_then_close_leaks_nothing: Exclusive,
                loop_owned_fds_are_cloexec: Exclusive,
                accept_under_emfile_is_error: Exclusive,
            }
        }
    };
}
